// The one typed Hono environment shared by every sub-app.

import type { Role } from "../src/do/tenant/catalog.ts";
import type { Env } from "../src/env.ts";

export type Principal =
  | { kind: "admin"; id: "admin" }
  | { kind: "tenant"; id: string; tenantId: string; keyId: string; name: string; role: Role; keyHash: string }
  | { kind: "worker"; id: string; workerId: string; shard: string; tokenHash: string }
  | { kind: "join"; id: string; poolId: string; tokenHash: string };

export type HonoEnv = {
  Bindings: Env;
  Variables: {
    requestId: string;
    principal: Principal | null;
    /** Set by the auth middleware when a token was presented but is not valid. */
    authError: string | null;
    /** When the request arrived (ms), for latency metrics. */
    startedAt: number;
  };
};
