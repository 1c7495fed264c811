import { describe, expect, it } from "vitest";
import { ApiError } from "../../api/client";
import { age, isStale, major, tail, violationOf, violationsByField } from "./util";

describe("approvals helpers", () => {
  it("shows enum tails", () => {
    expect(tail("APPROVAL_STATE_IN_PROGRESS", "APPROVAL_STATE_")).toBe("IN_PROGRESS");
    expect(tail(undefined, "X_")).toBe("");
    expect(tail("OTHER", "X_")).toBe("OTHER");
  });

  it("ages coarsely", () => {
    const now = Date.parse("2026-12-06T12:00:00Z");
    expect(age("2026-12-06T11:55:00Z", now)).toEqual({ n: 5, unit: "min" });
    expect(age("2026-12-06T02:00:00Z", now)).toEqual({ n: 10, unit: "h" });
    expect(age("2026-12-01T12:00:00Z", now)).toEqual({ n: 5, unit: "d" });
    expect(age("2026-12-06T13:00:00Z", now)).toEqual({ n: 0, unit: "min" });
    expect(age(undefined, now)).toBeNull();
    expect(age("nope", now)).toBeNull();
  });

  it("reads money", () => {
    expect(major("60000000")).toBe(600000);
    expect(major(undefined)).toBeNull();
  });

  it("maps field violations and stale errors", () => {
    const bad = new ApiError(400, 3, "invalid", [
      {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        fieldViolations: [{ field: "routing_rules.rules[0].team_path", description: "required" }],
      },
    ]);
    const v = violationsByField(bad);
    expect(violationOf(v, "rules[0].team_path")).toBe("required");
    expect(violationOf(v, "comment")).toBeUndefined();
    expect(violationsByField(new Error("x"))).toEqual({});
    expect(isStale(new ApiError(409, 10, "changed"))).toBe(true);
    expect(isStale(bad)).toBe(false);
  });
});
