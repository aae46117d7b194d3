// `gantry admin ...`: the platform admin's catalog: tenants, API keys, pools, join tokens and quotas. Each
// group lives in cli/commands/admin/; all use the profile's admin token (or GANTRY_ADMIN_TOKEN).
import { dispatch } from "./context.ts";

export async function run(argv: string[]): Promise<number> {
  return dispatch(
    "admin",
    "Platform administration (the admin token: 'gantry login --url URL --key ADMIN_TOKEN').",
    {
      tenant: {
        summary: "tenants: create, list, show, set-weight",
        run: async (a) => (await import("./admin/tenant.ts")).run(a),
      },
      key: {
        summary: "tenant API keys: create, list, revoke",
        run: async (a) => (await import("./admin/key.ts")).run(a),
      },
      pool: {
        summary: "worker pools: create, list",
        run: async (a) => (await import("./admin/pool.ts")).run(a),
      },
      "join-token": {
        summary: "join tokens for agents: create",
        run: async (a) => (await import("./admin/join-token.ts")).run(a),
      },
      quota: {
        summary: "tenant quotas: set, clear",
        run: async (a) => (await import("./admin/quota.ts")).run(a),
      },
    },
    argv,
  );
}
