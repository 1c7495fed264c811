// The offline queue: writes a rep makes without signal, kept in IndexedDB in the order they were
// made, each with a client-made id and an idempotency key fixed when it is queued. A flush sends
// the pending ones through POST /v1/sync:batch; the key makes a resend after a lost answer safe
// (the gateway replays the stored answer), so every write is applied exactly once.
//
// Outcomes per item: 2xx -> removed; 408/425/429/5xx (or no answer) -> kept, retried later;
// any other 4xx -> "refused", kept with the server's reason for the rep to edit or discard, and
// never blocking the items after it (the batch runs without stopOnFailure).
import { done, open, request } from "./idb";
import { idempotencyKey, ulid } from "./ulid";

export type WriteMethod = "POST" | "PATCH" | "PUT" | "DELETE";

export interface Refusal {
  status: number;
  message: string;
  reason?: string;
  fieldViolations?: { field: string; description: string }[];
}

export interface QueuedWrite {
  seq?: number; // IndexedDB key: the order the writes were made
  clientId: string;
  idempotencyKey: string;
  method: WriteMethod;
  path: string;
  body: unknown;
  /** Who queued it ("tenant/user"): only that user's session sends it. */
  owner: string;
  /** What the rep sees in the list, e.g. "Visit - ACME Trading". */
  label: string;
  /** The kind of write (activity, feedback, cardUse), for editing. */
  kind: string;
  createTime: string;
  state: "pending" | "refused";
  attempts: number;
  refusal?: Refusal;
}

export interface NewWrite {
  method: WriteMethod;
  path: string;
  body: unknown;
  owner: string;
  label: string;
  kind: string;
  clientId?: string;
}

export interface BatchItemResult {
  clientId: string;
  status: number;
  replayed?: boolean;
  body?: unknown;
}

/** What sending a batch gave: answers per item, or why there are none. */
export type SendOutcome =
  | { kind: "answered"; results: BatchItemResult[] }
  | { kind: "offline" }
  | { kind: "unauthorized" }
  | { kind: "retryLater"; afterMs?: number };

export type Sender = (items: QueuedWrite[]) => Promise<SendOutcome>;

export interface FlushOutcome {
  /** "idle": nothing to send; "sent": every answered item settled; "retry": some must go again. */
  kind: "idle" | "sent" | "retry" | "offline" | "unauthorized";
  sent: string[];
  refused: string[];
  afterMs?: number;
}

const STORE = "writes";
export const MAX_BATCH = 100; // the gateway's default SALESOPS_GATEWAY_BATCH_MAX_ITEMS

function retryable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status === 424 || status >= 500;
}

function refusal(result: BatchItemResult): Refusal {
  const body = (result.body ?? {}) as {
    message?: string;
    details?: { "@type"?: string; reason?: string; fieldViolations?: Refusal["fieldViolations"] }[];
  };
  const details = body.details ?? [];
  const info = details.find((d) => d["@type"]?.endsWith("google.rpc.ErrorInfo"));
  const bad = details.find((d) => d["@type"]?.endsWith("google.rpc.BadRequest"));
  return {
    status: result.status,
    message: body.message ?? `HTTP ${result.status}`,
    reason: info?.reason,
    fieldViolations: bad?.fieldViolations,
  };
}

export class OfflineQueue {
  private db: Promise<IDBDatabase> | null = null;
  private listeners = new Set<() => void>();
  private flushing: Promise<FlushOutcome> | null = null;

  constructor(
    private readonly name = "salesops-offline",
    private readonly factory: () => IDBFactory = () => indexedDB,
  ) {}

  private open(): Promise<IDBDatabase> {
    this.db ??= open(this.factory(), this.name, 1, (db) => {
      const store = db.createObjectStore(STORE, { keyPath: "seq", autoIncrement: true });
      store.createIndex("clientId", "clientId", { unique: true });
    });
    return this.db;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** Queue a write; its client id and idempotency key are fixed now, before any attempt. */
  async add(write: NewWrite): Promise<QueuedWrite> {
    const item: QueuedWrite = {
      clientId: write.clientId ?? ulid(),
      idempotencyKey: idempotencyKey(),
      method: write.method,
      path: write.path,
      body: write.body,
      owner: write.owner,
      label: write.label,
      kind: write.kind,
      createTime: new Date().toISOString(),
      state: "pending",
      attempts: 0,
    };
    const db = await this.open();
    const tx = db.transaction(STORE, "readwrite");
    item.seq = (await request(tx.objectStore(STORE).add(item))) as number;
    await done(tx);
    this.changed();
    return item;
  }

  /** Every queued write (pending and refused), oldest first; of one owner when given. */
  async list(owner?: string): Promise<QueuedWrite[]> {
    const db = await this.open();
    const all = (await request(db.transaction(STORE).objectStore(STORE).getAll())) as QueuedWrite[];
    return all.filter((w) => owner === undefined || w.owner === owner).sort((a, b) => a.seq! - b.seq!);
  }

  async get(clientId: string): Promise<QueuedWrite | undefined> {
    const db = await this.open();
    const index = db.transaction(STORE).objectStore(STORE).index("clientId");
    return (await request(index.get(clientId))) as QueuedWrite | undefined;
  }

  private async update(fn: (tx: IDBObjectStore) => Promise<void>): Promise<void> {
    const db = await this.open();
    const tx = db.transaction(STORE, "readwrite");
    await fn(tx.objectStore(STORE));
    await done(tx);
    this.changed();
  }

  async discard(clientId: string): Promise<void> {
    const item = await this.get(clientId);
    if (item) await this.update(async (s) => void (await request(s.delete(item.seq!))));
  }

  /**
   * The rep corrected a refused (or still pending) write: new body, pending again, and a new
   * idempotency key (the old one's answer, a refusal, would otherwise be replayed). It keeps its
   * place in the order.
   */
  async edit(clientId: string, body: unknown, label?: string): Promise<void> {
    const item = await this.get(clientId);
    if (!item) throw new Error(`no queued write ${clientId}`);
    const next: QueuedWrite = {
      ...item,
      body,
      label: label ?? item.label,
      idempotencyKey: idempotencyKey(),
      state: "pending",
      refusal: undefined,
      attempts: 0,
    };
    await this.update(async (s) => void (await request(s.put(next))));
  }

  /**
   * Send the owner's pending writes, oldest first, in batches; settle each by its answer.
   * One flush at a time: a second call while one runs waits for it (no item goes out twice
   * concurrently; the idempotency key would make it harmless, but it would be wasted work).
   */
  flush(owner: string, send: Sender): Promise<FlushOutcome> {
    if (this.flushing) return this.flushing.then(() => this.flush(owner, send));
    const run = this.flushOnce(owner, send).finally(() => {
      this.flushing = null;
    });
    this.flushing = run;
    return run;
  }

  private async flushOnce(owner: string, send: Sender): Promise<FlushOutcome> {
    const pending = (await this.list(owner)).filter((w) => w.state === "pending");
    const out: FlushOutcome = { kind: pending.length ? "sent" : "idle", sent: [], refused: [] };
    for (let i = 0; i < pending.length; i += MAX_BATCH) {
      const batch = pending.slice(i, i + MAX_BATCH);
      const outcome = await send(batch);
      if (outcome.kind !== "answered") {
        await this.countAttempt(batch);
        if (outcome.kind === "retryLater") return { ...out, kind: "retry", afterMs: outcome.afterMs };
        return { ...out, kind: outcome.kind };
      }
      const byId = new Map(outcome.results.map((r) => [r.clientId, r]));
      let again = false;
      await this.update(async (store) => {
        for (const item of batch) {
          const result = byId.get(item.clientId);
          if (result && result.status >= 200 && result.status < 300) {
            await request(store.delete(item.seq!));
            out.sent.push(item.clientId);
          } else if (!result || retryable(result.status)) {
            again = true;
            await request(store.put({ ...item, attempts: item.attempts + 1 }));
          } else {
            await request(store.put({ ...item, state: "refused", attempts: item.attempts + 1, refusal: refusal(result) }));
            out.refused.push(item.clientId);
          }
        }
      });
      if (again) return { ...out, kind: "retry" };
    }
    return out;
  }

  private async countAttempt(batch: QueuedWrite[]): Promise<void> {
    await this.update(async (store) => {
      for (const item of batch) {
        const current = (await request(store.get(item.seq!))) as QueuedWrite | undefined;
        if (current) await request(store.put({ ...current, attempts: current.attempts + 1 }));
      }
    });
  }
}

/** Delay before retry n (1-based): exponential from 1 s, capped at 60 s, with +-20 % jitter. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(60_000, 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}
