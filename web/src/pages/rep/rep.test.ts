import { describe, expect, it } from "vitest";
import { parseSse } from "./inboxStream";
import { countdown, grade } from "./util";

describe("SLA countdown", () => {
  const due = "2026-12-07T02:00:00Z";
  const at = Date.parse(due);
  it("counts down to the due time", () => {
    expect(countdown(due, at - 3723_000)).toEqual({ text: "1:02:03", overdue: false, seconds: 3723 });
    expect(countdown(due, at - (2 * 86400 + 5) * 1000).text).toBe("2d 00:00:05");
  });
  it("says overdue past it, counting up", () => {
    expect(countdown(due, at + 65_000)).toMatchObject({ text: "0:01:05", overdue: true });
  });
  it("reads grades", () => {
    expect(grade("LEAD_GRADE_A")).toBe("A");
    expect(grade("LEAD_GRADE_UNSPECIFIED")).toBe("");
    expect(grade(undefined)).toBe("");
  });
});

describe("inbox stream (SSE over fetch)", () => {
  it("splits events, keeps ids, joins data lines and leaves a partial event for later", () => {
    const text = 'id: 7\ndata: {"unreadCount":{"total":2}}\n\n: heartbeat comment\n\nevent: error\ndata: {"code":14}\n\nid: 8\ndata: {"item';
    const { events, rest } = parseSse(text);
    expect(events).toEqual([
      { id: "7", data: '{"unreadCount":{"total":2}}' },
      { event: "error", data: '{"code":14}' },
    ]);
    expect(rest).toBe('id: 8\ndata: {"item');
    const next = parseSse(rest + 'Added":{}}\n\n');
    expect(next.events).toEqual([{ id: "8", data: '{"itemAdded":{}}' }]);
  });
  it("accepts CRLF line ends and multi-line data", () => {
    expect(parseSse("data: a\r\ndata: b\r\n\r\n").events).toEqual([{ data: "a\nb" }]);
  });
});
