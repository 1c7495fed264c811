// The inbox, live: the gateway streams notify's StreamInbox as text/event-stream. EventSource
// cannot send the bearer header, so this reads the stream with fetch() and parses the events,
// reconnecting (with backoff) from the last event id (Last-Event-ID) so nothing is missed.
import { api, type Schemas } from "../../api/client";
import { session } from "../../auth/session";
import { backoffMs } from "../../offline/queue";

type Item = Schemas["salesops.notify.v1.InboxItem"];
type StreamMessage = Schemas["salesops.notify.v1.StreamInboxResponse"];

export interface InboxState {
  unread: number | null;
  items: Item[];
  live: boolean;
}

let state: InboxState = { unread: null, items: [], live: false };
const listeners = new Set<() => void>();

function set(next: Partial<InboxState>): void {
  state = { ...state, ...next };
  for (const l of listeners) l();
}

export const inbox = {
  subscribe(l: () => void): () => void {
    listeners.add(l);
    return () => listeners.delete(l);
  },
  snapshot(): InboxState {
    return state;
  },
  /** Replace the list from GET /v1/inbox (first load and after a stream reset). */
  async refresh(): Promise<void> {
    const r = await api.get<{ items?: Item[] }>("/v1/inbox?pageSize=50");
    set({ items: r.items ?? [] });
  },
  /** The unread count from the server (after items arrive or change, when no count came with them). */
  async refreshUnread(): Promise<void> {
    const r = await api.get<{ unreadCount?: { total?: number } }>("/v1/inbox:unreadCount");
    set({ unread: r.unreadCount?.total ?? 0 });
  },
  upsert(item: Item): void {
    const rest = state.items.filter((i) => i.itemId !== item.itemId);
    set({ items: [item, ...rest].sort((a, b) => (b.itemId ?? "").localeCompare(a.itemId ?? "")) });
  },
};

/** Split an SSE byte stream into events: {id, event, data}; returns the unparsed tail. */
export function parseSse(buffer: string): { events: { id?: string; event?: string; data: string }[]; rest: string } {
  const events: { id?: string; event?: string; data: string }[] = [];
  const blocks = buffer.replace(/\r\n/g, "\n").split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    const ev: { id?: string; event?: string; data: string } = { data: "" };
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const at = line.indexOf(":");
      const field = at < 0 ? line : line.slice(0, at);
      const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
      if (field === "data") data.push(value);
      else if (field === "id") ev.id = value;
      else if (field === "event") ev.event = value;
    }
    ev.data = data.join("\n");
    if (ev.data || ev.id) events.push(ev);
  }
  return { events, rest };
}

let recount: ReturnType<typeof setTimeout> | null = null;

function apply(msg: StreamMessage): void {
  if (msg.unreadCount) set({ unread: msg.unreadCount.total ?? 0 });
  if (msg.itemAdded) inbox.upsert(msg.itemAdded);
  if (msg.itemUpdated) inbox.upsert(msg.itemUpdated);
  if (msg.reset) void inbox.refresh().catch(() => undefined);
  if ((msg.itemAdded || msg.itemUpdated || msg.reset) && !msg.unreadCount) {
    // One count for a burst of items, not one call per item.
    if (recount) clearTimeout(recount);
    recount = setTimeout(() => void inbox.refreshUnread().catch(() => undefined), 300);
  }
}

let controller: AbortController | null = null;
let lastEventId = "";
let running = false;

async function connectOnce(signal: AbortSignal): Promise<"again" | "stop"> {
  const token = session.token();
  if (!token) return "stop";
  const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: "text/event-stream" };
  if (lastEventId) headers["Last-Event-ID"] = lastEventId;
  const response = await fetch("/v1/inbox:stream", { headers, signal, cache: "no-store" });
  if (response.status === 401) {
    session.expire();
    return "stop";
  }
  if (!response.ok || !response.body) return "again";
  set({ live: true });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    const parsed = parseSse(buffer);
    buffer = parsed.rest;
    for (const ev of parsed.events) {
      if (ev.id) lastEventId = ev.id;
      if (ev.event === "error" || !ev.data) continue;
      try {
        apply(JSON.parse(ev.data) as StreamMessage);
      } catch {
        /* a malformed event is skipped; the next reset or reconnect catches up */
      }
    }
  }
  return "again";
}

async function run(signal: AbortSignal): Promise<void> {
  let attempt = 0;
  void inbox.refresh().catch(() => undefined);
  while (!signal.aborted) {
    let next: "again" | "stop" = "again";
    try {
      next = await connectOnce(signal);
      attempt = 0;
    } catch {
      attempt += 1;
    }
    set({ live: false });
    if (next === "stop" || signal.aborted) return;
    await new Promise((r) => setTimeout(r, backoffMs(Math.max(1, attempt))));
  }
}

/** Keep one stream open while signed in (restarted for a new user). */
export function startInbox(): void {
  if (running) return;
  running = true;
  let user = "";
  const sync = () => {
    const who = session.claims()?.sub ?? "";
    if (who === user) return;
    user = who;
    controller?.abort();
    controller = null;
    lastEventId = "";
    set({ unread: null, items: [], live: false });
    if (who) {
      controller = new AbortController();
      void run(controller.signal);
    }
  };
  session.subscribe(sync);
  window.addEventListener("online", () => {
    // Reconnect at once rather than waiting out a backoff.
    if (!state.live && user) {
      controller?.abort();
      controller = new AbortController();
      void run(controller.signal);
    }
  });
  sync();
}
