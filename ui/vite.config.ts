import { defineConfig } from "vitest/config";

// Tauri serves the built files itself; a fixed port only matters for `npm run dev`.
export default defineConfig({
  clearScreen: false,
  server: { port: 1420, strictPort: true },
  build: { target: "safari15", outDir: "dist", emptyOutDir: true },
  test: { environment: "happy-dom", globals: true, include: ["tests/**/*.test.ts"] },
});
