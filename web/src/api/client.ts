// The one way the console talks to the gateway: same origin, bearer token, JSON, and errors as
// google.rpc.Status ({code, message, details}) turned into ApiError. Types come from the
// gateway's /openapi.json (openapi-typescript -> schema.d.ts, generated at build time).
import type { components } from "./schema";
import { session } from "../auth/session";

export type Schemas = components["schemas"];

/** A google.rpc.Status detail as the gateway writes it (`@type` plus the message's fields). */
export interface StatusDetail {
  "@type": string;
  [field: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: number,
    message: string,
    readonly details: StatusDetail[] = [],
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The ErrorInfo reason (e.g. "LEAD_ALREADY_CLAIMED"), when the server gave one. */
  get reason(): string | undefined {
    const info = this.details.find((d) => d["@type"].endsWith("google.rpc.ErrorInfo"));
    return typeof info?.reason === "string" ? info.reason : undefined;
  }

  /** ErrorInfo metadata (e.g. who won a claim race). */
  get metadata(): Record<string, string> {
    const info = this.details.find((d) => d["@type"].endsWith("google.rpc.ErrorInfo"));
    return (info?.metadata as Record<string, string> | undefined) ?? {};
  }

  /** Field violations of a BadRequest detail: field path -> description. */
  get fieldViolations(): { field: string; description: string }[] {
    const bad = this.details.find((d) => d["@type"].endsWith("google.rpc.BadRequest"));
    return (bad?.fieldViolations as { field: string; description: string }[] | undefined) ?? [];
  }

  /** True when the network, not the server, failed (offline): the call may be queued. */
  get offline(): boolean {
    return this.httpStatus === 0;
  }
}

export interface CallOptions {
  body?: unknown;
  idempotencyKey?: string;
  signal?: AbortSignal;
  /** Without a token (the demo sign-in list). */
  anonymous?: boolean;
}

/** A query string from a flat object; arrays repeat the key; undefined and "" are left out. */
export function query(params: Record<string, string | number | boolean | string[] | undefined>): string {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) q.append(key, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * A read that failed on the network while the browser believes it is online (a keep-alive
 * connection the server closed as it was reused, a phone between cells) is sent again after
 * these waits: a GET is safe to repeat. Chromium fails every request in flight when the device's
 * network changes (net::ERR_NETWORK_CHANGED: an interface or address coming or going), and such
 * changes come in bursts of a second or two, hence a third try some 6 s after the first. Writes
 * are never retried here (the offline queue owns them), and a browser that knows it is offline
 * fails at once.
 */
export const READ_RETRY_DELAYS_MS = [400, 1600, 4000];

function online(): boolean {
  return typeof navigator === "undefined" || navigator.onLine !== false;
}

/** Waits `ms`, or rejects with the signal's AbortError as soon as it aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new DOMException("aborted", "AbortError"));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason ?? new DOMException("aborted", "AbortError"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export async function call<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const token = session.token();
  if (token && !options.anonymous) headers.Authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
  let response: Response;
  for (let attempt = 0; ; attempt++) {
    try {
      response = await fetch(path, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: options.signal,
      });
      break;
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      const wait = method === "GET" && online() ? READ_RETRY_DELAYS_MS[attempt] : undefined;
      if (wait === undefined) throw new ApiError(0, 14, "offline: the server cannot be reached");
      await pause(wait, options.signal);
    }
  }
  const text = await response.text();
  const data: unknown = text ? safeJson(text) : {};
  if (!response.ok) {
    const status = (data ?? {}) as { code?: number; message?: string; details?: StatusDetail[] };
    const error = new ApiError(
      response.status,
      status.code ?? 2,
      status.message ?? `${response.status} ${response.statusText}`,
      status.details ?? [],
    );
    if (response.status === 401 && !options.anonymous) session.expire();
    throw error;
  }
  return data as T;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}

export const api = {
  get: <T>(path: string, options?: CallOptions) => call<T>("GET", path, options),
  post: <T>(path: string, body: unknown = {}, options?: CallOptions) => call<T>("POST", path, { ...options, body }),
  patch: <T>(path: string, body: unknown, options?: CallOptions) => call<T>("PATCH", path, { ...options, body }),
  del: <T>(path: string, options?: CallOptions) => call<T>("DELETE", path, options),
};
