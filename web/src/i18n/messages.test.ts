import { describe, expect, it } from "vitest";
import { messages } from "./messages";
import { translate } from "./i18n";

describe("the message catalogues", () => {
  it("have the same keys in zh-CN and English", () => {
    const zh = Object.keys(messages["zh-CN"]).sort();
    const en = Object.keys(messages.en).sort();
    expect(zh.filter((k) => !en.includes(k))).toEqual([]);
    expect(en.filter((k) => !zh.includes(k))).toEqual([]);
  });

  it("fill placeholders and fall back to the key", () => {
    expect(translate("en", "app.error", { message: "boom" })).toBe("Something went wrong: boom");
    expect(translate("zh-CN", "no.such.key")).toBe("no.such.key");
  });
});
