import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { backoffMs, OfflineQueue, type BatchItemResult, type QueuedWrite, type SendOutcome } from "./queue";

let n = 0;
const fresh = () => new OfflineQueue(`test-queue-${++n}-${Date.now()}`);
const ME = "demo/rep-a1";

function write(label: string, owner = ME) {
  return { method: "POST" as const, path: `/v1/leads/L1/activities`, body: { summary: label }, owner, label, kind: "activity" };
}

/** A fake gateway: applies each idempotency key once and replays its answer after that. */
function server(answer: (item: QueuedWrite) => number = () => 200) {
  const applied: string[] = [];
  const stored = new Map<string, BatchItemResult>();
  const batches: string[][] = [];
  const send = async (items: QueuedWrite[]): Promise<SendOutcome> => {
    batches.push(items.map((i) => i.label));
    const results = items.map((item) => {
      const seen = stored.get(item.idempotencyKey);
      if (seen) return { ...seen, replayed: true };
      const status = answer(item);
      if (status < 300) applied.push(item.label);
      const body = status < 300 ? {} : { code: 9, message: "lead is closed", details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "LEAD_CLOSED" }] };
      const result = { clientId: item.clientId, status, body };
      if (status < 500 && status !== 429) stored.set(item.idempotencyKey, result);
      return result;
    });
    return { kind: "answered", results };
  };
  return { send, applied, batches };
}

describe("offline queue", () => {
  it("keeps the order writes were made and sends them in it", async () => {
    const q = fresh();
    for (const label of ["first", "second", "third"]) await q.add(write(label));
    const s = server();
    const out = await q.flush(ME, s.send);
    expect(out.kind).toBe("sent");
    expect(s.batches).toEqual([["first", "second", "third"]]);
    expect(await q.list()).toEqual([]);
  });

  it("gives every write a client id and an idempotency key fixed when queued", async () => {
    const q = fresh();
    const a = await q.add(write("a"));
    const b = await q.add(write("b"));
    expect(a.clientId).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(new Set([a.clientId, b.clientId, a.idempotencyKey, b.idempotencyKey]).size).toBe(4);
    const stored = await q.list();
    expect(stored.map((w) => w.idempotencyKey)).toEqual([a.idempotencyKey, b.idempotencyKey]);
  });

  it("keeps everything on a network failure and retries with the same keys", async () => {
    const q = fresh();
    await q.add(write("visit"));
    const keys = (await q.list()).map((w) => w.idempotencyKey);
    const offline = await q.flush(ME, async () => ({ kind: "offline" }));
    expect(offline.kind).toBe("offline");
    const kept = await q.list();
    expect(kept.map((w) => w.idempotencyKey)).toEqual(keys);
    expect(kept[0].attempts).toBe(1);
    const s = server();
    expect((await q.flush(ME, s.send)).sent).toHaveLength(1);
    expect(s.applied).toEqual(["visit"]);
  });

  it("applies a write exactly once when the answer was lost and it is sent again", async () => {
    const q = fresh();
    await q.add(write("visit"));
    const s = server();
    // The server applied the batch but the phone never saw the answer (connection dropped).
    const lost = await q.flush(ME, async (items) => {
      await s.send(items);
      return { kind: "offline" };
    });
    expect(lost.kind).toBe("offline");
    expect(await q.list()).toHaveLength(1);
    const again = await q.flush(ME, s.send);
    expect(again.sent).toHaveLength(1);
    expect(s.applied).toEqual(["visit"]); // once, though sent twice
    expect(await q.list()).toEqual([]);
  });

  it("marks a refused write with the server's reason and still sends the ones after it", async () => {
    const q = fresh();
    await q.add(write("ok-1"));
    const bad = await q.add(write("bad"));
    await q.add(write("ok-2"));
    const s = server((item) => (item.label === "bad" ? 409 : 200));
    const out = await q.flush(ME, s.send);
    expect(out.refused).toEqual([bad.clientId]);
    expect(s.applied).toEqual(["ok-1", "ok-2"]);
    const left = await q.list();
    expect(left).toHaveLength(1);
    expect(left[0].state).toBe("refused");
    expect(left[0].refusal).toMatchObject({ status: 409, reason: "LEAD_CLOSED", message: "lead is closed" });
    // A later flush does not send a refused write again on its own.
    const idle = await q.flush(ME, s.send);
    expect(idle.kind).toBe("idle");
  });

  it("sends an edited refused write with a new key; a discarded one is gone", async () => {
    const q = fresh();
    const bad = await q.add(write("bad"));
    const other = await q.add(write("other"));
    let refuse = true;
    const s = server((item) => (refuse && item.label === "bad" ? 400 : 200));
    await q.flush(ME, async () => ({ kind: "answered", results: [] })); // no answers: kept, retry
    expect((await q.list()).map((w) => w.state)).toEqual(["pending", "pending"]);
    await q.flush(ME, s.send);
    expect((await q.get(bad.clientId))?.state).toBe("refused");
    refuse = false;
    await q.edit(bad.clientId, { summary: "fixed" }, "fixed");
    const edited = await q.get(bad.clientId);
    expect(edited?.idempotencyKey).not.toBe(bad.idempotencyKey);
    expect(edited?.state).toBe("pending");
    await q.flush(ME, s.send);
    expect(s.applied).toEqual(["other", "fixed"]);
    expect(await q.list()).toEqual([]);
    await q.add(write("unwanted"));
    const [unwanted] = await q.list();
    await q.discard(unwanted.clientId);
    expect(await q.list()).toEqual([]);
    expect(other.clientId).toBeTruthy();
  });

  it("retries items the server throttled or failed on, keeping their keys and order", async () => {
    const q = fresh();
    await q.add(write("a"));
    await q.add(write("b"));
    let busy = true;
    const s = server((item) => (busy && item.label === "a" ? 503 : 200));
    const first = await q.flush(ME, s.send);
    expect(first.kind).toBe("retry");
    expect(s.applied).toEqual(["b"]);
    busy = false;
    await q.flush(ME, s.send);
    expect(s.applied).toEqual(["b", "a"]);
    expect(await q.list()).toEqual([]);
  });

  it("keeps the queue on 401 and sends it after the next sign-in", async () => {
    const q = fresh();
    await q.add(write("visit"));
    expect((await q.flush(ME, async () => ({ kind: "unauthorized" }))).kind).toBe("unauthorized");
    expect(await q.list()).toHaveLength(1);
    const s = server();
    await q.flush(ME, s.send);
    expect(s.applied).toEqual(["visit"]);
  });

  it("sends only the signed-in user's writes", async () => {
    const q = fresh();
    await q.add(write("mine"));
    await q.add(write("theirs", "demo/rep-b1"));
    const s = server();
    await q.flush(ME, s.send);
    expect(s.applied).toEqual(["mine"]);
    expect((await q.list()).map((w) => w.label)).toEqual(["theirs"]);
  });

  it("never runs two flushes at once", async () => {
    const q = fresh();
    await q.add(write("once"));
    const s = server();
    const [a, b] = await Promise.all([q.flush(ME, s.send), q.flush(ME, s.send)]);
    expect(s.batches).toEqual([["once"]]);
    expect([a.kind, b.kind].sort()).toEqual(["idle", "sent"]);
  });

  it("splits a long queue into batches the gateway accepts, in order", async () => {
    const q = fresh();
    for (let i = 0; i < 105; i++) await q.add(write(`w${i}`));
    const s = server();
    await q.flush(ME, s.send);
    expect(s.batches.map((b) => b.length)).toEqual([100, 5]);
    expect(s.applied[0]).toBe("w0");
    expect(s.applied[104]).toBe("w104");
  });

  it("backs off exponentially, capped, with jitter", () => {
    expect(backoffMs(1, () => 0.5)).toBe(1000);
    expect(backoffMs(3, () => 0.5)).toBe(4000);
    expect(backoffMs(20, () => 0.5)).toBe(60000);
    expect(backoffMs(2, () => 0)).toBe(1600);
    expect(backoffMs(2, () => 1)).toBe(2400);
  });
});
