import { defineConfig } from "vitest/config";

// Unit tests run in Node (the offline queue against fake-indexeddb); browser flows are Playwright's.
export default defineConfig({
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
