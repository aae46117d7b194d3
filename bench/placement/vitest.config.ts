// The tenant half of the placement benchmark runs inside workerd (Cloudflare's vitest pool), because the
// concrete job per placement is picked by the tenant's Durable Object from its SQLite queue. Not part of
// `npm test`: `npm run bench -- placement` runs it (see bench/suites/placement.ts).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { BENCH_ADMIN_TOKEN } from "./token.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export default defineConfig({
  root: ROOT,
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: path.join(ROOT, "wrangler.toml") },
      miniflare: {
        bindings: {
          ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
          DATABASE_URL: inject("databaseUrl"),
          PG_WS_PROXY: inject("wsProxy"),
          LOG_REQUESTS: "0",
        },
      },
    })),
  ],
  // Same reason as vitest.worker.config.ts: functions/vendor/*.txt are symlinks bundled as text.
  resolve: { preserveSymlinks: true },
  test: {
    name: "bench-placement",
    include: ["bench/placement/**/*.workerd.ts"],
    // The same database + proxy setup the in-runtime tests use (embedded PGlite, or DATABASE_URL).
    globalSetup: [path.join(ROOT, "test/support/worker-global-setup.ts")],
    testTimeout: 900_000,
    hookTimeout: 120_000,
  },
});
