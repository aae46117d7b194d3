// `gantry admin quota set|clear TENANT`: a tenant's GPU quota (Kueue model: nominal per GPU type, plus
// borrowing and lending limits inside a cohort, and a cap on concurrent jobs).
import { seg } from "../../lib/api.ts";
import { listFlag, stringFlag } from "../../lib/args.ts";
import { UsageError } from "../../lib/errors.ts";
import { EXIT } from "../../lib/exit-codes.ts";
import { renderTable } from "../../lib/table.ts";
import { dispatch, runCommand } from "../context.ts";
import { positiveInt } from "../job-spec.ts";
import { adminSpec } from "./common.ts";

export interface QuotaEntry {
  nominal: number;
  borrowingLimit?: number;
  lendingLimit?: number;
}

export interface QuotaSpec {
  gpus: Record<string, QuotaEntry>;
  maxConcurrentJobs?: number;
  cohort?: string;
}

const NOT_FOUND = "'gantry admin tenant list' lists the tenants";

export async function run(argv: string[]): Promise<number> {
  return dispatch(
    "admin quota",
    "Tenant quotas: GPUs per type a tenant may hold at once (scheduled + running + allocations).",
    {
      set: { summary: "set (replace) a tenant's quota", run: set },
      clear: { summary: "remove a tenant's quota (unlimited)", run: clear },
    },
    argv,
  );
}

/** "H100=8", "H100=8,borrow=4,lend=2", "*=2" → ["H100", {nominal: 8, borrowingLimit: 4, lendingLimit: 2}]. */
export function parseGpuQuota(raw: string): [string, QuotaEntry] {
  const [head, ...opts] = raw.split(",");
  const eq = head!.indexOf("=");
  const bad = () =>
    new UsageError(`--gpus expects TYPE=NOMINAL[,borrow=N][,lend=N] (TYPE "*" for any type), got "${raw}"`);
  if (eq <= 0) throw bad();
  const type = head!.slice(0, eq).trim();
  const entry: QuotaEntry = { nominal: count(head!.slice(eq + 1), raw) };
  for (const opt of opts) {
    const [k, v] = opt.split("=");
    if (v === undefined) throw bad();
    if (k === "borrow") entry.borrowingLimit = count(v, raw);
    else if (k === "lend") entry.lendingLimit = count(v, raw);
    else throw new UsageError(`--gpus: unknown option "${k}" in "${raw}" (borrow=N or lend=N)`);
  }
  return [type, entry];
}

/** The reverse, for display: "H100=8,borrow=4 *=2 cohort=research max-jobs=5". */
export function formatQuota(q: {
  gpus: Record<string, { nominal: number; borrowingLimit?: number | null; lendingLimit?: number | null }>;
  cohort?: string | null;
  maxConcurrentJobs?: number | null;
}): string {
  const parts = Object.entries(q.gpus).map(([type, e]) =>
    [
      `${type}=${e.nominal}`,
      ...(e.borrowingLimit != null ? [`borrow=${e.borrowingLimit}`] : []),
      ...(e.lendingLimit != null ? [`lend=${e.lendingLimit}`] : []),
    ].join(","),
  );
  if (q.cohort) parts.push(`cohort=${q.cohort}`);
  if (q.maxConcurrentJobs) parts.push(`max-jobs=${q.maxConcurrentJobs}`);
  return parts.join(" ");
}

function count(v: string, raw: string): number {
  if (!/^\d+$/.test(v.trim())) throw new UsageError(`--gpus: "${v}" is not a whole number in "${raw}"`);
  return Number(v);
}

function set(argv: string[]): Promise<number> {
  const spec = adminSpec(
    "quota set",
    "TENANT --gpus TYPE=NOMINAL[,borrow=N,lend=N] ... [--cohort C] [--max-jobs N]",
    `Sets a tenant's quota, replacing the previous one. Applies to the next scheduling decision.
  NOMINAL  GPUs of TYPE the tenant may hold
  borrow   how many more it may borrow from unused quota in its cohort
  lend     how many of its unused GPUs others in the cohort may borrow
Example: gantry admin quota set vision --gpus H100=8,borrow=4 --gpus '*=2' --cohort research`,
    {
      flags: {
        gpus: { type: "string", multiple: true },
        cohort: { type: "string" },
        "max-jobs": { type: "string" },
      },
      options:
        '  --gpus SPEC           TYPE=NOMINAL[,borrow=N][,lend=N]; repeat per type; TYPE "*" is every\n                        type without its own entry\n  --cohort NAME         the cohort it borrows from and lends to\n  --max-jobs N          at most N jobs scheduled or running at once',
      args: { min: 1, max: 1, names: "the TENANT" },
      notFound: NOT_FOUND,
    },
  );
  return runCommand(spec, argv, async (ctx) => {
    const entries = listFlag(ctx.flags, "gpus").map(parseGpuQuota);
    if (entries.length === 0) throw new UsageError("missing --gpus TYPE=NOMINAL (repeat for each GPU type)");
    const body: QuotaSpec = { gpus: Object.fromEntries(entries) };
    const cohort = stringFlag(ctx.flags, "cohort");
    if (cohort) body.cohort = cohort;
    const maxJobs = stringFlag(ctx.flags, "max-jobs");
    if (maxJobs !== undefined) body.maxConcurrentJobs = positiveInt(maxJobs, "max-jobs");
    const tenant = ctx.args[0]!;
    const stored = await ctx
      .api()
      .put<QuotaSpec & { cohort: string | null; maxConcurrentJobs: number | null }>(
        `/v1/tenants/${seg(tenant)}/quota`,
        body,
      );
    if (ctx.json) ctx.out.doc(stored);
    else {
      ctx.out.line(
        `Quota of tenant ${tenant} set${stored.cohort ? ` (cohort ${stored.cohort})` : ""}${stored.maxConcurrentJobs ? `, at most ${stored.maxConcurrentJobs} concurrent jobs` : ""}:`,
      );
      const lim = (v: number | null | undefined) => (v === null || v === undefined ? "-" : v);
      ctx.out.print(
        renderTable(
          [
            { header: "GPU TYPE", value: ([k]: [string, QuotaEntry]) => k },
            { header: "NOMINAL", value: ([, e]) => e.nominal, right: true },
            { header: "BORROW", value: ([, e]) => lim(e.borrowingLimit), right: true },
            { header: "LEND", value: ([, e]) => lim(e.lendingLimit), right: true },
          ],
          Object.entries(stored.gpus),
        ),
      );
    }
    return EXIT.ok;
  });
}

function clear(argv: string[]): Promise<number> {
  const spec = adminSpec(
    "quota clear",
    "TENANT [options]",
    "Removes a tenant's quota: it may use any free GPUs.",
    {
      args: { min: 1, max: 1, names: "the TENANT" },
      notFound: NOT_FOUND,
    },
  );
  return runCommand(spec, argv, async (ctx) => {
    const tenant = ctx.args[0]!;
    await ctx.api().delete(`/v1/tenants/${seg(tenant)}/quota`);
    if (ctx.json) ctx.out.doc({ tenantId: tenant, quota: null });
    else ctx.out.line(`Removed the quota of tenant ${tenant}: no limit.`);
    return EXIT.ok;
  });
}
