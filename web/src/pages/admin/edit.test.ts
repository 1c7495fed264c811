import { describe, expect, it } from "vitest";
import { checkList, editable, maskOf, parseDoc } from "./edit";

describe("admin editors", () => {
  it("shows a document without output-only fields and keeps the etag", () => {
    const text = editable({ rules: [], version: "3", etag: "e3", audit: { updateTime: "x" } });
    expect(JSON.parse(text)).toEqual({ rules: [], etag: "e3" });
  });

  it("parses objects only", () => {
    expect(parseDoc('{"a": 1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseDoc("[1]").ok).toBe(false);
    expect(parseDoc("{oops").ok).toBe(false);
  });

  it("masks the top-level fields by their JSON names (as a FieldMask is written in JSON)", () => {
    expect(maskOf({ rules: [], fallbackPoolId: "f", etag: "e", version: "2" })).toBe("rules,fallbackPoolId");
  });

  it("checks ids and required keys of a list", () => {
    const v = checkList(
      { rules: [{ ruleId: "a", teamPath: "t" }, { ruleId: "a", teamPath: "" }, { teamPath: "x" }] },
      "rules",
      "ruleId",
      ["teamPath"],
    );
    expect(v).toEqual([
      { field: "rules[1].ruleId", description: 'duplicate id "a"' },
      { field: "rules[1].teamPath", description: "required" },
      { field: "rules[2].ruleId", description: "required" },
    ]);
    expect(checkList({}, "rules", "ruleId")).toEqual([]);
    expect(checkList({ rules: 3 }, "rules", "ruleId")).toEqual([{ field: "rules", description: "must be a list" }]);
  });
});
