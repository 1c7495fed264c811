// Client-made ids: ULIDs (Crockford base32, time-ordered), the form the services accept for
// client-set resource ids (activityId, useId), so a write made offline keeps its id when synced.
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

export function ulid(now: number = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let rand = "";
  for (const b of bytes) rand += ALPHABET[b % 32];
  return time + rand;
}

/** An idempotency key: random, never reused for a different request. */
export function idempotencyKey(): string {
  return typeof crypto.randomUUID === "function" ? crypto.randomUUID() : ulid();
}
