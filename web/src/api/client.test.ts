import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, call, READ_RETRY_DELAYS_MS } from "./client";

/** A fetch that fails on the network `failures` times, then answers 200 with `{ok: true}`. */
function flaky(failures: number) {
  let calls = 0;
  const fetch = vi.fn(async () => {
    calls += 1;
    if (calls <= failures) throw new TypeError("Failed to fetch");
    return new Response(JSON.stringify({ ok: true }), { status: 200 });
  });
  vi.stubGlobal("fetch", fetch);
  return fetch;
}

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("call: network failures", () => {
  it("sends a read again after a network failure, and answers with the second reply", async () => {
    vi.useFakeTimers();
    const fetch = flaky(1);
    const got = call<{ ok: boolean }>("GET", "/v1/deals");
    await vi.advanceTimersByTimeAsync(READ_RETRY_DELAYS_MS[0]);
    expect(await got).toEqual({ ok: true });
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it("gives up on a read after its retries, as offline", async () => {
    vi.useFakeTimers();
    const fetch = flaky(99);
    const got = call("GET", "/v1/deals").catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(READ_RETRY_DELAYS_MS.reduce((a, b) => a + b, 0));
    const err = (await got) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.offline).toBe(true);
    expect(fetch).toHaveBeenCalledTimes(READ_RETRY_DELAYS_MS.length + 1);
  });

  it("never sends a write twice: it fails as offline at once (the offline queue owns writes)", async () => {
    const fetch = flaky(1);
    const err = (await call("POST", "/v1/leads", { body: {} }).catch((e: unknown) => e)) as ApiError;
    expect(err.offline).toBe(true);
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it("stops waiting to retry as soon as the caller aborts", async () => {
    vi.useFakeTimers();
    const fetch = flaky(1);
    const abort = new AbortController();
    const got = call("GET", "/v1/deals", { signal: abort.signal }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1);
    abort.abort();
    const err = (await got) as Error;
    expect(err.name).toBe("AbortError");
    expect(fetch).toHaveBeenCalledTimes(1);
  });
});
