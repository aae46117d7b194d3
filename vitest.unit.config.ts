// Plain Node tests: the pure domain code in src/domain, the CLI and the agent's own pieces. Milliseconds.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "unit",
    include: ["test/unit/**/*.test.ts"],
    environment: "node",
    testTimeout: 20_000,
  },
});
