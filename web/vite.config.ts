import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

// Built into web/dist, which mottainai-server serves under "/" (hashed files under /assets/).
export default defineConfig({
  plugins: [preact()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
});
