// A panel's table as CSV (RFC 4180), downloaded in the browser: no server round trip.

export type Cell = string | number | boolean | null | undefined;

/** One CSV field: quoted when it holds a comma, quote or line break; a leading =, +, - or @ of
 * text is prefixed with ' so a spreadsheet does not run it as a formula (numbers stay numbers). */
export function csvField(value: Cell): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  let s = String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The header and rows as CSV text, CRLF line ends, with a BOM so spreadsheet apps read UTF-8 (zh-CN). */
export function toCsv(header: string[], rows: Cell[][]): string {
  return "\uFEFF" + [header, ...rows].map((r) => r.map(csvField).join(",")).join("\r\n") + "\r\n";
}

/** A file name from a title and the day: "forecast-2026-12-06.csv". */
export function csvName(base: string, day: Date = new Date()): string {
  const slug = base.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "table";
  return `${slug}-${day.toISOString().slice(0, 10)}.csv`;
}

/** Saves the CSV through a Blob URL (CSP-safe: no data: navigation, no inline script). */
export function downloadCsv(name: string, header: string[], rows: Cell[][]): void {
  const url = URL.createObjectURL(new Blob([toCsv(header, rows)], { type: "text/csv;charset=utf-8" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
