// Pure helpers of the admin editors: a policy document as editable JSON and back, its update mask,
// and the client-side checks run before a save (the server's BadRequest stays the authority).

/** Fields the server owns: never sent back in an update, and not shown in the editor. */
const OUTPUT_ONLY = new Set(["audit", "version"]);

/** The document as the editor shows it: without output-only fields (the etag stays: it is sent back). */
export function editable(doc: Record<string, unknown> | null | undefined): string {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc ?? {})) if (!OUTPUT_ONLY.has(k)) out[k] = v;
  return JSON.stringify(out, null, 2);
}

export type Parsed = { ok: true; value: Record<string, unknown> } | { ok: false; error: string };

/** The editor's text as an object, or why it is not one. */
export function parseDoc(text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) return { ok: false, error: "a JSON object is expected" };
  return { ok: true, value: value as Record<string, unknown> };
}

/**
 * The update mask replacing every top-level field given (etag and output-only fields excluded).
 * The paths are the JSON names (lowerCamelCase), as a FieldMask is written in JSON: the gateway
 * refuses snake_case paths there ("fallback_pool_id must not contain _").
 */
export function maskOf(value: Record<string, unknown>): string {
  return Object.keys(value)
    .filter((k) => k !== "etag" && !OUTPUT_ONLY.has(k))
    .join(",");
}

export interface Violation {
  field: string;
  description: string;
}

/** Every entry of `list` (at `field`) needs a non-empty, unique `idKey`, and the `required` keys. */
export function checkList(value: Record<string, unknown>, field: string, idKey: string, required: string[] = []): Violation[] {
  const list = value[field];
  if (list === undefined) return [];
  if (!Array.isArray(list)) return [{ field, description: "must be a list" }];
  const out: Violation[] = [];
  const seen = new Set<string>();
  list.forEach((item: unknown, i) => {
    const entry = (item ?? {}) as Record<string, unknown>;
    const id = entry[idKey];
    if (typeof id !== "string" || !id) out.push({ field: `${field}[${i}].${idKey}`, description: "required" });
    else if (seen.has(id)) out.push({ field: `${field}[${i}].${idKey}`, description: `duplicate id "${id}"` });
    else seen.add(id);
    for (const key of required) {
      const v = entry[key];
      if (v === undefined || v === "" || v === null) out.push({ field: `${field}[${i}].${key}`, description: "required" });
    }
  });
  return out;
}
