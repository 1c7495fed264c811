import { afterEach, describe, expect, it, vi } from "vitest";
import { arrivedMyLeads, MY_LEADS_PATH, myLeads, prefetchMyLeads } from "./myLeads";

// A fetch that answers each call with the next list, counting the calls.
function stubFetch() {
  let n = 0;
  const fetch = vi.fn(async (path: string) => {
    n += 1;
    expect(path).toBe(MY_LEADS_PATH);
    return new Response(JSON.stringify({ leads: [{ leadId: `L${n}` }] }), { status: 200 });
  });
  vi.stubGlobal("fetch", fetch);
  return fetch;
}

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

describe("the worklist's early read", () => {
  it("is taken once by the worklist: one request, then a new one on reload", async () => {
    const fetch = stubFetch();
    prefetchMyLeads();
    prefetchMyLeads(); // asked twice before it is taken: still one request
    await vi.waitFor(() => expect(arrivedMyLeads()?.leads?.[0]?.leadId).toBe("L1"));
    expect((await myLeads()).leads?.[0]?.leadId).toBe("L1");
    expect(arrivedMyLeads()).toBeNull();
    expect((await myLeads()).leads?.[0]?.leadId).toBe("L2"); // a reload asks again
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it("is not used once it is old: the worklist asks again", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const fetch = stubFetch();
    prefetchMyLeads();
    await vi.waitFor(() => expect(arrivedMyLeads()).not.toBeNull());
    vi.setSystemTime(Date.now() + 11_000);
    expect(arrivedMyLeads()).toBeNull();
    expect((await myLeads()).leads?.[0]?.leadId).toBe("L2");
    expect(fetch).toHaveBeenCalledTimes(2);
  });
});
