// `gantry admin pool create|list`: worker pools (agents join one with a join token).
import { stringFlag } from "../../lib/args.ts";
import { formatAgo } from "../../lib/duration.ts";
import { EXIT } from "../../lib/exit-codes.ts";
import { renderTable } from "../../lib/table.ts";
import { dispatch, runCommand } from "../context.ts";
import { adminSpec } from "./common.ts";

interface Pool {
  id: string;
  name: string;
  createdAt: string;
}

export async function run(argv: string[]): Promise<number> {
  return dispatch(
    "admin pool",
    "Worker pools: groups of GPU hosts; agents join one with a join token.",
    {
      create: { summary: "create a pool", run: create },
      list: { summary: "list pools", run: list },
    },
    argv,
  );
}

function create(argv: string[]): Promise<number> {
  const spec = adminSpec(
    "pool create",
    "ID [--name NAME] [options]",
    "Creates a pool. IDs are lowercase letters, digits and '-'.",
    {
      flags: { name: { type: "string" } },
      options: "  --name NAME           display name (default: the id)",
      args: { min: 1, max: 1, names: "the pool ID" },
    },
  );
  return runCommand(spec, argv, async (ctx) => {
    const name = stringFlag(ctx.flags, "name");
    const p = await ctx.api().post<Pool>("/v1/pools", { id: ctx.args[0], ...(name ? { name } : {}) });
    if (ctx.json) ctx.out.doc(p);
    else ctx.out.line(`Created pool ${p.id}. Next: 'gantry admin join-token create ${p.id}'.`);
    return EXIT.ok;
  });
}

function list(argv: string[]): Promise<number> {
  return runCommand(adminSpec("pool list", "[options]", "Lists the pools."), argv, async (ctx) => {
    const page = await ctx.api().get<{ items: Pool[] }>("/v1/pools");
    if (ctx.json) ctx.out.doc(page);
    else if (page.items.length === 0)
      ctx.out.line("No pools. Create one with 'gantry admin pool create ID'.");
    else {
      const now = Date.now();
      ctx.out.print(
        renderTable(
          [
            { header: "ID", value: (p: Pool) => p.id },
            { header: "NAME", value: (p) => p.name },
            { header: "CREATED", value: (p) => formatAgo(p.createdAt, now) },
          ],
          page.items,
        ),
      );
    }
    return EXIT.ok;
  });
}
