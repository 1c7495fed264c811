// Pure helpers of the per-field rule forms: lists typed as "a, b", enum values shown by their
// tail ("A" for LEAD_GRADE_A), list edits, and a field's violation by its API path.

/** "a, b ,c" -> ["a", "b", "c"] (empty parts dropped). */
export function splitList(text: string): string[] {
  return text
    .split(/[,，]/)
    .map((p) => p.trim())
    .filter(Boolean);
}

export function joinList(list: readonly string[] | undefined): string {
  return (list ?? []).join(", ");
}

/** Enum values from their tails: ("LEAD_GRADE_", "A, b") -> ["LEAD_GRADE_A", "LEAD_GRADE_B"]. */
export function enumList(prefix: string, text: string): string[] {
  return splitList(text).map((p) => (p.toUpperCase().startsWith(prefix) ? p.toUpperCase() : prefix + p.toUpperCase()));
}

/** The tails of enum values, joined for an input: ["LEAD_GRADE_A"] -> "A". */
export function enumTails(prefix: string, list: readonly string[] | undefined): string {
  return joinList((list ?? []).map((v) => (v.startsWith(prefix) ? v.slice(prefix.length) : v)));
}

export function replaceAt<T>(list: readonly T[], i: number, item: T): T[] {
  return list.map((x, j) => (j === i ? item : x));
}

export function removeAt<T>(list: readonly T[], i: number): T[] {
  return list.filter((_, j) => j !== i);
}

/** The list with item i moved by `delta` places (kept in bounds). */
export function moveItem<T>(list: readonly T[], i: number, delta: number): T[] {
  const to = Math.max(0, Math.min(list.length - 1, i + delta));
  const out = [...list];
  const [item] = out.splice(i, 1);
  out.splice(to, 0, item);
  return out;
}

/** The violation of the field at `path` (e.g. "rules[0].team_path"): exact, or a longer path ending with it. */
export function violationAt(violations: Record<string, string>, path: string): string | undefined {
  if (violations[path]) return violations[path];
  const key = Object.keys(violations).find((k) => k.endsWith("." + path));
  return key ? violations[key] : undefined;
}
