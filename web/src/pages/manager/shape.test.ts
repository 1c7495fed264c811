import { describe, expect, it } from "vitest";
import { csvField, csvName, toCsv } from "./csv";
import { ageBucket, ageDays, countBy, hours, major, scopeOf, sigmaBand, weekOverWeek } from "./shape";

describe("CSV export", () => {
  it("quotes commas, quotes and line breaks, and keeps numbers", () => {
    expect(csvField('say "hi", then\nleave')).toBe('"say ""hi"", then\nleave"');
    expect(csvField(12.5)).toBe("12.5");
    expect(csvField(-3)).toBe("-3");
    expect(csvField(null)).toBe("");
    expect(csvField(Number.NaN)).toBe("");
  });

  it("defuses spreadsheet formulas in text", () => {
    expect(csvField("=HYPERLINK(\"x\")")).toBe('"\'=HYPERLINK(""x"")"');
    expect(csvField("+1")).toBe("'+1");
    expect(csvField("@sum")).toBe("'@sum");
  });

  it("writes a BOM, the header and CRLF rows; names files by slug and day", () => {
    expect(toCsv(["rep", "won"], [["rep-a1", 100], ["销售 B", 0]])).toBe("\uFEFFrep,won\r\nrep-a1,100\r\n销售 B,0\r\n");
    expect(csvName("Forecast vs Target", new Date("2026-12-06T07:00:00Z"))).toBe("forecast-vs-target-2026-12-06.csv");
    expect(csvName("预测")).toMatch(/^table-\d{4}-\d{2}-\d{2}\.csv$/);
  });
});

describe("the ±2σ band", () => {
  it("flags values outside mean ± 2 sd, either side", () => {
    expect(sigmaBand(10, 10, 1)).toMatchObject({ z: 0, anomalous: false, lower: 8, upper: 12 });
    expect(sigmaBand(12.5, 10, 1)).toMatchObject({ z: 2.5, anomalous: true });
    expect(sigmaBand(7.9, 10, 1).anomalous).toBe(true);
    expect(sigmaBand(12, 10, 1).anomalous).toBe(false); // on the bound is inside
  });

  it("never flags without spread", () => {
    expect(sigmaBand(100, 10, 0)).toMatchObject({ z: null, anomalous: false });
    expect(sigmaBand(3, 0, Number.NaN)).toMatchObject({ z: null, anomalous: false }); // no baseline: no z, not 0
  });
});

describe("shaping", () => {
  const now = Date.parse("2026-12-06T08:00:00Z");
  it("buckets ages and counts", () => {
    expect(ageBucket("2026-12-06T01:00:00Z", now)).toBe("<1");
    expect(ageBucket("2026-12-04T08:00:00Z", now)).toBe("1-3");
    expect(ageBucket("2026-12-01T08:00:00Z", now)).toBe("3-7");
    expect(ageBucket("2026-11-01T08:00:00Z", now)).toBe(">7");
    expect(ageDays("2026-12-01T08:00:00Z", now)).toBe(5);
    expect(countBy(["a", "b", "a"], (x) => x)).toEqual([["a", 2], ["b", 1]]);
  });

  it("reads money and durations", () => {
    expect(major({ currency: "CNY", amountMinor: "123456" })).toBe(1234.56);
    expect(major(undefined)).toBe(0);
    expect(hours("5400s")).toBe(1.5);
  });

  it("picks last week's snapshot of the latest period with two", () => {
    const p = (m: number) => ({ granularity: "PERIOD_GRANULARITY_MONTH", startDate: { year: 2026, month: m, day: 1 } });
    const snaps = [
      { snapshotId: "dec-1", takeTime: "2026-12-01T12:00:00Z", period: p(12) },
      { snapshotId: "nov-30", takeTime: "2026-11-30T12:00:00Z", period: p(11) },
      { snapshotId: "nov-22", takeTime: "2026-11-22T12:00:00Z", period: p(11) },
      { snapshotId: "nov-15", takeTime: "2026-11-15T12:00:00Z", period: p(11) },
    ];
    expect(weekOverWeek(snaps)).toEqual(["nov-22", "nov-30"]);
    expect(weekOverWeek(snaps.slice(0, 2))).toBeNull();
  });
});

describe("the scope of a total", () => {
  it("names the team, region or own deals the figures cover, the company only for the company", () => {
    expect(scopeOf("ORG_LEVEL_TEAM", "east/team-a", "east/team-a")).toEqual({ key: "mgr.level.team", name: "east/team-a" });
    expect(scopeOf("ORG_LEVEL_REGION", "east", "east")).toEqual({ key: "mgr.level.region", name: "east" });
    expect(scopeOf("ORG_LEVEL_REP", "rep-a1", "Rep A1")).toEqual({ key: "mgr.level.rep", name: "Rep A1" });
    expect(scopeOf("ORG_LEVEL_COMPANY", "", "company")).toEqual({ key: "mgr.level.company", name: "" });
  });
});
