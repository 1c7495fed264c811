import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Served by the gateway under /app/ (same origin as the API). Charts (ECharts) are split into
// their own chunk, loaded by the dashboards only: the rep pages stay under the 300 KB budget.
export default defineConfig({
  base: "/app/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    rollupOptions: {
      input: { main: "index.html", sw: "src/offline/sw.ts" },
      output: {
        // The service worker keeps a fixed name at the root of /app/ (its scope).
        entryFileNames: (chunk) => (chunk.name === "sw" ? "sw.js" : "assets/[name]-[hash].js"),
      },
    },
  },
  server: {
    // `npm run dev` against a running `make run` stack: the API and the demo sign-in.
    proxy: { "/v1": "http://127.0.0.1:8080", "/auth": "http://127.0.0.1:8080" },
  },
});
