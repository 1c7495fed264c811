import { describe, expect, it } from "vitest";
import { enumList, enumTails, moveItem, removeAt, splitList, violationAt } from "./ruleEdit";

describe("rule form helpers", () => {
  it("splits lists on ASCII and full-width commas", () => {
    expect(splitList(" east/*, north ，west ,")).toEqual(["east/*", "north", "west"]);
  });

  it("maps enum tails both ways", () => {
    expect(enumList("LEAD_GRADE_", "a, LEAD_GRADE_B")).toEqual(["LEAD_GRADE_A", "LEAD_GRADE_B"]);
    expect(enumTails("LEAD_GRADE_", ["LEAD_GRADE_A", "LEAD_GRADE_C"])).toBe("A, C");
  });

  it("moves and removes items within bounds", () => {
    expect(moveItem(["a", "b", "c"], 2, -1)).toEqual(["a", "c", "b"]);
    expect(moveItem(["a", "b", "c"], 0, -1)).toEqual(["a", "b", "c"]);
    expect(removeAt(["a", "b", "c"], 1)).toEqual(["a", "c"]);
  });

  it("finds a server violation by the field's path under the document's name", () => {
    const v = { "routing_rules.rules[1].team_path": "required", "routing_rules.rules[10].team_path": "other" };
    expect(violationAt(v, "rules[1].team_path")).toBe("required");
    expect(violationAt(v, "rules[0].team_path")).toBeUndefined();
  });
});
