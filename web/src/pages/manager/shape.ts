// Pure data shaping of the dashboards: money, periods, the ±2σ band, ages. Tested in Node (Vitest).

export interface MoneyJson {
  currency?: string;
  amountMinor?: string | number;
}

/** Major units (yuan) of a Money as JSON (int64 comes as a string); 0 when missing. */
export function major(m?: MoneyJson | null): number {
  return m?.amountMinor ? Number(m.amountMinor) / 100 : 0;
}

/** google.type.Date parts of a day, for query strings (period.startDate.year=...). */
export function dateParams(prefix: string, d: Date): Record<string, number> {
  return { [`${prefix}.year`]: d.getUTCFullYear(), [`${prefix}.month`]: d.getUTCMonth() + 1, [`${prefix}.day`]: d.getUTCDate() };
}

/** The first day (UTC) of the month `offset` months from the one holding `at`. */
export function monthStart(at: Date, offset = 0): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + offset, 1));
}

/** Where a value sits against its baseline: z = (value - mean) / sd; outside ±k sd is an anomaly.
 * Without spread (sd 0 or missing: no baseline, or a flat one) there is no z (null, never a fake 0)
 * and nothing is flagged: one quiet baseline is not a signal. */
export function sigmaBand(value: number, mean: number, sd: number, k = 2): { z: number | null; anomalous: boolean; lower: number; upper: number } {
  const lower = mean - k * sd;
  const upper = mean + k * sd;
  if (!(sd > 0)) return { z: null, anomalous: false, lower, upper };
  const z = (value - mean) / sd;
  return { z, anomalous: Math.abs(z) > k, lower, upper };
}

/** Age buckets of waiting items (days): "<1", "1-3", "3-7", ">7". */
export const AGE_BUCKETS = ["<1", "1-3", "3-7", ">7"] as const;

export function ageBucket(sinceIso: string | undefined, now: number): (typeof AGE_BUCKETS)[number] {
  const days = sinceIso ? (now - Date.parse(sinceIso)) / 86_400_000 : 0;
  if (days < 1) return "<1";
  if (days < 3) return "1-3";
  if (days < 7) return "3-7";
  return ">7";
}

export function ageDays(sinceIso: string | undefined, now: number): number {
  return sinceIso ? Math.max(0, Math.floor((now - Date.parse(sinceIso)) / 86_400_000)) : 0;
}

/** Counts of `items` per key, in first-seen order. */
export function countBy<T>(items: T[], key: (t: T) => string): [string, number][] {
  const out = new Map<string, number>();
  for (const i of items) out.set(key(i), (out.get(key(i)) ?? 0) + 1);
  return [...out];
}

/** "3600s" / "1.5s" (a protobuf Duration as JSON) -> hours; 0 when missing. */
export function hours(duration?: string): number {
  return duration ? Number.parseFloat(duration) / 3600 : 0;
}

/** The enum value's tail after its prefix: FLOW_KIND_PULLED_IN -> PULLED_IN. */
export function tail(value: string | undefined, prefix: string): string {
  return value?.startsWith(prefix) ? value.slice(prefix.length) : (value ?? "");
}

export interface Snapshot {
  snapshotId?: string;
  takeTime?: string;
  period?: { granularity?: string; startDate?: { year?: number; month?: number; day?: number } };
}

/** The two snapshots to compare for "since last week": the newest of the most recent period with at
 * least two, and the latest of that period taken 7 days or more before it (else its oldest). */
export function weekOverWeek(snapshots: Snapshot[]): [string, string] | null {
  const key = (s: Snapshot) => JSON.stringify(s.period ?? {});
  const sorted = [...snapshots].filter((s) => s.takeTime).sort((a, b) => Date.parse(b.takeTime!) - Date.parse(a.takeTime!));
  for (const newest of sorted) {
    const same = sorted.filter((s) => key(s) === key(newest) && s !== newest && Date.parse(s.takeTime!) < Date.parse(newest.takeTime!));
    if (!same.length) continue;
    const weekBefore = Date.parse(newest.takeTime!) - 7 * 86_400_000;
    const from = same.find((s) => Date.parse(s.takeTime!) <= weekBefore) ?? same[same.length - 1];
    return [from.snapshotId!, newest.snapshotId!];
  }
  return null;
}

/** The message key and name of the scope a total covers (its OrgLevel, key and display name), so a
 * team's figures are labelled with the team, never "the company". */
export function scopeOf(level?: string, key?: string, displayName?: string): { key: string; name: string } {
  const name = displayName || key || "";
  switch (level) {
    case "ORG_LEVEL_REP":
      return { key: "mgr.level.rep", name };
    case "ORG_LEVEL_TEAM":
      return { key: "mgr.level.team", name };
    case "ORG_LEVEL_CITY":
      return { key: "mgr.level.city", name };
    case "ORG_LEVEL_REGION":
      return { key: "mgr.level.region", name };
    case "ORG_LEVEL_COMPANY":
      return { key: "mgr.level.company", name: "" };
    default:
      return { key: "mgr.level.unknown", name };
  }
}
