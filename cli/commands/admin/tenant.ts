// `gantry admin tenant create|list|show|set-weight`.
import { seg } from "../../lib/api.ts";
import { stringFlag } from "../../lib/args.ts";
import { formatAgo } from "../../lib/duration.ts";
import { UsageError } from "../../lib/errors.ts";
import { EXIT } from "../../lib/exit-codes.ts";
import { renderKeyValues, renderTable } from "../../lib/table.ts";
import { dispatch, runCommand } from "../context.ts";
import { adminSpec } from "./common.ts";
import { formatQuota } from "./quota.ts";

export interface Tenant {
  id: string;
  name: string;
  weight: number;
  quota: unknown;
  limits: unknown;
  createdAt: string;
  updatedAt: string;
}

const NOT_FOUND = "'gantry admin tenant list' lists the tenants";

export async function run(argv: string[]): Promise<number> {
  return dispatch(
    "admin tenant",
    "Tenants: each has its own queue, keys, policies and quota, and a fair-share weight.",
    {
      create: { summary: "create a tenant", run: create },
      list: { summary: "list tenants", run: list },
      show: { summary: "show a tenant (with its quota)", run: show },
      "set-weight": { summary: "change a tenant's fair-share weight", run: setWeight },
    },
    argv,
  );
}

export function parseWeight(raw: string): number {
  const w = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(w) || w <= 0) {
    throw new UsageError(`the weight must be a number > 0, got "${raw}"`);
  }
  return w;
}

function create(argv: string[]): Promise<number> {
  const spec = adminSpec(
    "tenant create",
    "ID [--name NAME] [--weight W]",
    "Creates a tenant. IDs are lowercase letters, digits and '-'.",
    {
      flags: { name: { type: "string" }, weight: { type: "string" } },
      options:
        "  --name NAME           display name (default: the id)\n  --weight W            fair-share weight > 0 (default 1)",
      args: { min: 1, max: 1, names: "the tenant ID" },
    },
  );
  return runCommand(spec, argv, async (ctx) => {
    const body: Record<string, unknown> = { id: ctx.args[0] };
    const name = stringFlag(ctx.flags, "name");
    if (name) body.name = name;
    const weight = stringFlag(ctx.flags, "weight");
    if (weight !== undefined) body.weight = parseWeight(weight);
    const t = await ctx.api().post<Tenant>("/v1/tenants", body);
    if (ctx.json) ctx.out.doc(t);
    else
      ctx.out.line(
        `Created tenant ${t.id} (weight ${t.weight}). Next: 'gantry admin key create ${t.id} --name NAME'.`,
      );
    return EXIT.ok;
  });
}

function list(argv: string[]): Promise<number> {
  return runCommand(adminSpec("tenant list", "[options]", "Lists every tenant."), argv, async (ctx) => {
    const page = await ctx.api().get<{ items: Tenant[] }>("/v1/tenants");
    if (ctx.json) ctx.out.doc(page);
    else if (page.items.length === 0)
      ctx.out.line("No tenants. Create one with 'gantry admin tenant create ID'.");
    else {
      const now = Date.now();
      ctx.out.print(
        renderTable(
          [
            { header: "ID", value: (t: Tenant) => t.id },
            { header: "NAME", value: (t) => t.name, max: 40 },
            { header: "WEIGHT", value: (t) => t.weight, right: true },
            { header: "QUOTA", value: (t) => (t.quota ? "yes" : "none") },
            { header: "CREATED", value: (t) => formatAgo(t.createdAt, now) },
          ],
          page.items,
        ),
      );
    }
    return EXIT.ok;
  });
}

function show(argv: string[]): Promise<number> {
  const spec = adminSpec("tenant show", "ID [options]", "Shows a tenant with its quota and rate limits.", {
    args: { min: 1, max: 1, names: "the tenant ID" },
    notFound: NOT_FOUND,
  });
  return runCommand(spec, argv, async (ctx) => {
    const t = await ctx.api().get<Tenant>(`/v1/tenants/${seg(ctx.args[0]!)}`);
    if (ctx.json) ctx.out.doc(t);
    else {
      ctx.out.print(
        renderKeyValues([
          ["Tenant", t.id],
          ["Name", t.name],
          ["Weight", t.weight],
          ["Quota", t.quota ? formatQuota(t.quota as Parameters<typeof formatQuota>[0]) : "none (unlimited)"],
          ["Rate limits", t.limits ? JSON.stringify(t.limits) : "none"],
          ["Created", `${t.createdAt} (${formatAgo(t.createdAt)})`],
          ["Updated", `${t.updatedAt} (${formatAgo(t.updatedAt)})`],
        ]),
      );
    }
    return EXIT.ok;
  });
}

function setWeight(argv: string[]): Promise<number> {
  const spec = adminSpec(
    "tenant set-weight",
    "ID WEIGHT [options]",
    "Changes a tenant's fair-share weight (> 0); applies to the next placement.",
    {
      args: { min: 2, max: 2, names: "the tenant ID and the weight" },
      notFound: NOT_FOUND,
    },
  );
  return runCommand(spec, argv, async (ctx) => {
    const t = await ctx
      .api()
      .patch<Tenant>(`/v1/tenants/${seg(ctx.args[0]!)}`, { weight: parseWeight(ctx.args[1]!) });
    if (ctx.json) ctx.out.doc(t);
    else ctx.out.line(`Tenant ${t.id} now has weight ${t.weight}.`);
    return EXIT.ok;
  });
}
