// `gantry admin join-token create POOL [--ttl D]`: a token agents register with (shown once).
import { seg } from "../../lib/api.ts";
import { stringFlag } from "../../lib/args.ts";
import { parseDuration } from "../../lib/duration.ts";
import { UsageError } from "../../lib/errors.ts";
import { EXIT } from "../../lib/exit-codes.ts";
import { dispatch, runCommand } from "../context.ts";
import { adminSpec } from "./common.ts";

interface JoinToken {
  id: string;
  poolId: string;
  token: string;
  expiresAt: string | null;
}

export async function run(argv: string[]): Promise<number> {
  return dispatch(
    "admin join-token",
    "Join tokens: what 'gantry agent --join-token T' registers a GPU host with.",
    { create: { summary: "create a join token for a pool (printed once)", run: create } },
    argv,
  );
}

function create(argv: string[]): Promise<number> {
  const spec = adminSpec(
    "join-token create",
    "POOL [--ttl D] [options]",
    "Creates a join token for POOL and prints it once. Agents use it to register:\n  gantry agent --url URL --join-token TOKEN",
    {
      flags: { ttl: { type: "string" } },
      options: "  --ttl D               expire after this long: 1h, 7d (at least 60s; default: never)",
      args: { min: 1, max: 1, names: "the POOL" },
      notFound: "'gantry admin pool list' lists the pools",
    },
  );
  return runCommand(spec, argv, async (ctx) => {
    const ttl = stringFlag(ctx.flags, "ttl");
    const body: Record<string, number> = {};
    if (ttl !== undefined) {
      const s = parseDuration(ttl);
      if (s === null || s < 60)
        throw new UsageError(`--ttl expects a duration of at least 60s (1h, 7d), got "${ttl}"`);
      body.ttlSeconds = Math.round(s);
    }
    const t = await ctx.api().post<JoinToken>(`/v1/pools/${seg(ctx.args[0]!)}/join-tokens`, body);
    if (ctx.json) ctx.out.doc(t);
    else {
      ctx.out.info(
        `Created join token ${t.id} for pool ${t.poolId}${t.expiresAt ? `, expires ${t.expiresAt}` : ""}. It is shown once:`,
      );
      ctx.out.line(t.token);
    }
    return EXIT.ok;
  });
}
