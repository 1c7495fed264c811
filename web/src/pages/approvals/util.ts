// Helpers shared by the approvals and admin pages: loading with reload, enum display, ages, errors.
import { useCallback, useEffect, useState } from "react";
import { ApiError } from "../../api/client";

export interface Loaded<T> {
  data: T | null;
  error: ApiError | Error | null;
  loading: boolean;
  reload: () => void;
}

/** Load once (and on `reload`), keeping the last data while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: ApiError | Error | null; loading: boolean }>({
    data: null,
    error: null,
    loading: true,
  });
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

/** The part of an enum value after its prefix: APPROVAL_STATE_IN_PROGRESS -> IN_PROGRESS. */
export function tail(value: string | undefined, prefix: string): string {
  if (!value) return "";
  return value.startsWith(prefix) ? value.slice(prefix.length) : value;
}

/** How long since `sinceIso` at `now` (ms), coarse: {unit, n} for "3 h", "2 d", "5 min". */
export function age(sinceIso: string | undefined, now: number): { n: number; unit: "min" | "h" | "d" } | null {
  if (!sinceIso) return null;
  const t = Date.parse(sinceIso);
  if (Number.isNaN(t)) return null;
  const minutes = Math.max(0, Math.floor((now - t) / 60000));
  if (minutes < 60) return { n: minutes, unit: "min" };
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return { n: hours, unit: "h" };
  return { n: Math.floor(hours / 24), unit: "d" };
}

/** Money as a number of major units (amountMinor is a string of minor units). */
export function major(amountMinor: string | number | undefined): number | null {
  if (amountMinor === undefined || amountMinor === "") return null;
  const n = Number(amountMinor);
  return Number.isFinite(n) ? n / 100 : null;
}

/** Field violations keyed by field path (the last segment and the whole path both), for inline errors. */
export function violationsByField(err: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!(err instanceof ApiError)) return out;
  for (const v of err.fieldViolations) {
    out[v.field] = v.description;
  }
  return out;
}

/** The violation of `field` (exact, or a field whose path ends with it). */
export function violationOf(violations: Record<string, string>, field: string): string | undefined {
  if (violations[field]) return violations[field];
  const key = Object.keys(violations).find((k) => k === field || k.endsWith("." + field));
  return key ? violations[key] : undefined;
}

/** gRPC ABORTED: someone changed the resource since it was read (stale etag / version). */
export function isStale(err: unknown): boolean {
  return err instanceof ApiError && err.code === 10;
}
