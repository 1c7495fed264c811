// The browser side of the offline queue: one queue per browser profile, flushed through
// POST /v1/sync:batch whenever there may be signal (a write was queued, the browser came back
// online, the user signed in, a retry came due). Network failures back off exponentially;
// a 401 keeps the queue (the session expires and the sign-in page says so) until the next sign-in.
import { ApiError, call } from "../api/client";
import { session } from "../auth/session";
import { backoffMs, OfflineQueue, type FlushOutcome, type NewWrite, type QueuedWrite, type SendOutcome } from "./queue";

export const outbox = new OfflineQueue();

export function owner(): string | null {
  const c = session.claims();
  return c ? `${c.tenant}/${c.sub}` : null;
}

interface BatchResponse {
  results: { clientId: string; status: number; replayed: boolean; body: unknown }[];
}

async function send(items: QueuedWrite[]): Promise<SendOutcome> {
  const body = {
    items: items.map((w) => ({
      clientId: w.clientId,
      idempotencyKey: w.idempotencyKey,
      method: w.method,
      path: w.path,
      body: w.body,
    })),
  };
  try {
    const reply = await call<BatchResponse>("POST", "/v1/sync:batch", { body });
    return { kind: "answered", results: reply.results ?? [] };
  } catch (err) {
    if (!(err instanceof ApiError)) return { kind: "offline" };
    if (err.offline) return { kind: "offline" };
    if (err.httpStatus === 401) return { kind: "unauthorized" };
    return { kind: "retryLater" }; // 429 / 5xx of the batch itself: nothing was applied for sure
  }
}

let attempt = 0;
let timer: ReturnType<typeof setTimeout> | null = null;

function schedule(ms: number): void {
  if (timer) clearTimeout(timer);
  timer = setTimeout(() => {
    timer = null;
    void syncNow();
  }, ms);
}

/** Flush now (if signed in); on failure, try again after a backoff. */
export async function syncNow(): Promise<FlushOutcome | null> {
  const who = owner();
  if (!who) return null;
  const out = await outbox.flush(who, send);
  if (out.kind === "offline" || out.kind === "retry") {
    attempt += 1;
    schedule(out.afterMs ?? backoffMs(attempt));
  } else {
    attempt = 0;
  }
  return out;
}

export type WriteResult =
  | { kind: "sent"; item: QueuedWrite }
  | { kind: "queued"; item: QueuedWrite }
  | { kind: "refused"; item: QueuedWrite };

/**
 * Make a write through the queue (so it is exactly-once whether or not there is signal), then
 * try to send it at once. "queued": it waits for signal and goes later by itself.
 */
export async function submitWrite(write: Omit<NewWrite, "owner">): Promise<WriteResult> {
  const who = owner();
  if (!who) throw new Error("not signed in");
  const item = await outbox.add({ ...write, owner: who });
  await syncNow();
  const after = await outbox.get(item.clientId);
  if (!after) return { kind: "sent", item };
  return after.state === "refused" ? { kind: "refused", item: after } : { kind: "queued", item: after };
}

let started = false;

/** Start the background sync (once): on coming online, on sign-in, and every minute. */
export function startSync(): void {
  if (started || typeof window === "undefined") return;
  started = true;
  window.addEventListener("online", () => {
    attempt = 0;
    void syncNow();
  });
  let signedIn = session.token() !== null;
  session.subscribe(() => {
    const now = session.token() !== null;
    if (now && !signedIn) void syncNow();
    // A deliberate sign-out drops the cached reads (they are that user's); an expiry keeps them.
    if (!now && signedIn && !session.expired() && "caches" in window) void caches.delete("salesops-api-v1");
    signedIn = now;
  });
  setInterval(() => void syncNow(), 60_000);
  void syncNow();
}
