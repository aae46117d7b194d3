// In-runtime tests: the real Worker and Durable Objects on workerd (Cloudflare's vitest pool), talking to
// a real Postgres (embedded PGlite, or DATABASE_URL) through the same Neon driver as production.
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export const TEST_ADMIN_TOKEN = "test-admin-token-0123456789";

export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          ADMIN_TOKEN: TEST_ADMIN_TOKEN,
          DATABASE_URL: inject("databaseUrl"),
          PG_WS_PROXY: inject("wsProxy"),
          FLEET_SHARDS: "4",
          LOG_REQUESTS: "0",
          HEARTBEAT_SECONDS: "2",
          LEASE_TTL_SECONDS: "6",
          OUTBOX_FLUSH_MS: "50",
          CORS_ORIGINS: "https://dash.example",
        },
      },
    })),
  ],
  // functions/vendor/*.txt are symlinks into node_modules that wrangler bundles as Text modules. Resolved
  // through the symlink they would load as JavaScript/CSS modules instead, and /docs would serve something
  // else in tests than in production.
  resolve: { preserveSymlinks: true },
  test: {
    name: "worker",
    include: ["test/worker/**/*.test.ts"],
    globalSetup: ["./test/support/worker-global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
