// Small helpers of the rep pages: a shared one-second clock, SLA countdowns, grades, loading.
import { useCallback, useEffect, useState, useSyncExternalStore } from "react";
import { ApiError } from "../../api/client";

const tickers = new Set<() => void>();
let now = Date.now();
let interval: ReturnType<typeof setInterval> | null = null;

function subscribeClock(listener: () => void): () => void {
  tickers.add(listener);
  interval ??= setInterval(() => {
    now = Date.now();
    for (const l of tickers) l();
  }, 1000);
  return () => {
    tickers.delete(listener);
    if (!tickers.size && interval) {
      clearInterval(interval);
      interval = null;
    }
  };
}

/** The current time, re-rendering every second (one timer for every countdown on the page). */
export function useNow(): number {
  return useSyncExternalStore(subscribeClock, () => now);
}

/** "1:02:03" (h:mm:ss) or "2d 03:04" for long ones; `overdue` when the due time has passed. */
export function countdown(dueIso: string, at: number): { text: string; overdue: boolean; seconds: number } {
  const seconds = Math.round((Date.parse(dueIso) - at) / 1000);
  const abs = Math.abs(seconds);
  const d = Math.floor(abs / 86400);
  const h = Math.floor((abs % 86400) / 3600);
  const m = Math.floor((abs % 3600) / 60);
  const s = abs % 60;
  const pad = (x: number) => String(x).padStart(2, "0");
  const text = d > 0 ? `${d}d ${pad(h)}:${pad(m)}:${pad(s)}` : `${h}:${pad(m)}:${pad(s)}`;
  return { text, overdue: seconds < 0, seconds };
}

/** "A" / "B" / "C" from LEAD_GRADE_A..., "" when ungraded. */
export function grade(value?: string): string {
  return value?.startsWith("LEAD_GRADE_") && !value.endsWith("UNSPECIFIED") ? value.slice(11) : "";
}

/** The part of an enum value after its prefix, for display keys: ACTIVITY_TYPE_VISIT -> VISIT. */
export function enumTail(value: string | undefined, prefix: string): string {
  return value?.startsWith(prefix) ? value.slice(prefix.length) : (value ?? "");
}

export interface Loaded<T> {
  data: T | null;
  error: ApiError | Error | null;
  loading: boolean;
  reload: () => void;
}

/**
 * Load once (and on `reload`), keeping the last data while reloading. `initial`: data already at
 * hand for the first render (shown at once; the load still runs and replaces it).
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], initial?: () => T | null): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: ApiError | Error | null; loading: boolean }>(() => ({
    data: initial?.() ?? null,
    error: null,
    loading: true,
  }));
  const [n, setN] = useState(0);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const run = useCallback(load, deps);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    run().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error: ApiError | Error) => live && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => {
      live = false;
    };
  }, [run, n]);
  return { ...state, reload: () => setN((x) => x + 1) };
}
