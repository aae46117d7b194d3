// End-to-end tests: a real `wrangler dev` process (through the same launcher as `npm start`), real agent
// processes, a real Postgres (embedded PGlite by default, DATABASE_URL's server when set).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "e2e",
    include: ["test/e2e/**/*.test.ts"],
    environment: "node",
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Each file starts its own server; two at once on two cores only makes both slower.
    fileParallelism: false,
  },
});
