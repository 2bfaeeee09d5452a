import { defineConfig } from "vitest/config";

// The unit tests run before the wasm module is built (CI's order) and must not need it: under
// Vitest a module that names the built wasm as an asset fails to import even where an earlier
// build left one behind, so a local run fails as a clean clone would.
const noWasmInUnitTests = {
  name: "no-wasm-in-unit-tests",
  enforce: "pre" as const,
  resolveId(id: string) {
    if (process.env.VITEST && /\.wasm\?url$/.test(id)) {
      throw new Error(`unit tests import ${id}, a build output: import it lazily where it is used`);
    }
    return null;
  },
};

// Tauri serves the built files itself; a fixed port only matters for `npm run dev`.
// `vite build --mode web` builds the browser peer (web.html) on its own into dist-web/, so the
// app's bundle does not carry it and its build does not need the wasm module.
export default defineConfig(({ mode }) => ({
  clearScreen: false,
  plugins: [noWasmInUnitTests],
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
