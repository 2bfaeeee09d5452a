import { defineConfig } from "vitest/config";

// Tauri serves the built files itself; a fixed port only matters for `npm run dev`.
// `vite build --mode web` builds the browser peer (web.html) on its own into dist-web/, so the
// app's bundle does not carry it and its build does not need the wasm module.
export default defineConfig(({ mode }) => ({
  clearScreen: false,
  server: { port: 1420, strictPort: true },
  build:
    mode === "web"
      ? {
          target: "es2022",
          outDir: "dist-web",
          emptyOutDir: true,
          // The Service Worker (streamed downloads) at a fixed root name: its scope (/ferry-dl/)
          // must lie under the script's folder.
          rollupOptions: {
            input: { web: "web.html", sw: "src/web/sw.ts" },
            output: { entryFileNames: (c: { name: string }) => (c.name === "sw" ? "sw.js" : "assets/[name]-[hash].js") },
          },
        }
      : { target: "safari15", outDir: "dist", emptyOutDir: true },
  test: { environment: "happy-dom", globals: true, include: ["tests/**/*.test.ts"] },
}));
