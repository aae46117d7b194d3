// Chaos tests (`npm run test:chaos`): kill -9 of the runtime under load, Postgres away for 60 s under load,
// idempotent retries through a crash. Real wrangler dev through the launcher, real database, real agents.
// Not part of `npm test` (they take minutes); CI runs them after the two test runs.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "chaos",
    include: ["test/chaos/**/*.test.ts"],
    environment: "node",
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // Each file runs its own server under load; two at once on two cores would only disturb each other.
    fileParallelism: false,
  },
});
