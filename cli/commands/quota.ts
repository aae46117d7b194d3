// `gantry quota`: the tenant's GPU quota per type (nominal, borrowing and lending limits), what is in use
// against it right now, and manual allocations.
import { formatAgo } from "../lib/duration.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import { renderTable } from "../lib/table.ts";
import { COMMON_HELP, type Ctx, runCommand } from "./context.ts";

interface QuotaEntry {
  nominal: number;
  borrowingLimit?: number | null;
  lendingLimit?: number | null;
}

export interface QuotaStatus {
  quota: {
    gpus: Record<string, QuotaEntry>;
    maxConcurrentJobs?: number | null;
    cohort?: string | null;
  } | null;
  usage: { gpus: number; byType: Record<string, number>; jobs: number };
  allocations?: {
    id: string;
    gpus: number;
    gpuType: string | null;
    note: string | null;
    createdAt: string;
  }[];
}

const USAGE = `Usage: gantry quota [options]

Your tenant's quota: per GPU type ("*" = every type without its own entry) the nominal GPUs, how
many more it may borrow from its cohort and how many it lends, and how many are in use now
(scheduled and running jobs plus manual allocations). No quota means no limit.

${COMMON_HELP}

With --json: the API's document (GET /v1/quota).

${EXIT_CODES_HELP}`;

export async function run(argv: string[]): Promise<number> {
  return runCommand({ name: "quota", usage: USAGE }, argv, async (ctx: Ctx) => {
    const q = await ctx.api().get<QuotaStatus>("/v1/quota");
    if (ctx.json) ctx.out.doc(q);
    else ctx.out.print(renderQuota(q, Date.now()));
    return EXIT.ok;
  });
}

/** The quota bucket a GPU type draws from: its own entry (types match ignoring case), else "*". */
function bucketOf(gpus: Record<string, QuotaEntry>, type: string): string | null {
  const own = Object.keys(gpus).find((k) => k.toUpperCase() === type.toUpperCase());
  return own ?? (gpus["*"] ? "*" : null);
}

export function renderQuota(q: QuotaStatus, now: number): string {
  const inUse = Object.entries(q.usage.byType)
    .map(([t, n]) => `${n}x${t}`)
    .join(", ");
  const usageLine = `In use: ${q.usage.gpus} GPU(s)${inUse ? ` (${inUse})` : ""}, ${q.usage.jobs} job(s) scheduled or running`;
  const parts: string[] = [];
  if (!q.quota) {
    parts.push(`No quota: GPUs are not limited.\n${usageLine}\n`);
  } else {
    const gpus = q.quota.gpus;
    const used: Record<string, number> = {};
    const unbucketed: string[] = [];
    for (const [t, n] of Object.entries(q.usage.byType)) {
      const b = bucketOf(gpus, t);
      if (b) used[b] = (used[b] ?? 0) + n;
      else unbucketed.push(`${n}x${t}`);
    }
    const head = [
      q.quota.cohort ? `Cohort: ${q.quota.cohort}` : "Cohort: none (no borrowing or lending)",
      `Concurrent jobs: ${q.usage.jobs}${q.quota.maxConcurrentJobs ? ` of at most ${q.quota.maxConcurrentJobs}` : " (no limit)"}`,
      usageLine,
    ];
    if (unbucketed.length) head.push(`Outside the quota: ${unbucketed.join(", ")}`);
    const rows = Object.entries(gpus).sort(([a], [b]) =>
      a === "*" ? 1 : b === "*" ? -1 : a.localeCompare(b),
    );
    const limit = (v: number | null | undefined) => (v === null || v === undefined ? "-" : v);
    parts.push(
      `${head.join("\n")}\n\n${renderTable(
        [
          { header: "GPU TYPE", value: ([k]: [string, QuotaEntry]) => k },
          { header: "NOMINAL", value: ([, e]) => e.nominal, right: true },
          { header: "BORROW", value: ([, e]) => limit(e.borrowingLimit), right: true },
          { header: "LEND", value: ([, e]) => limit(e.lendingLimit), right: true },
          { header: "IN USE", value: ([k]) => used[k] ?? 0, right: true },
        ],
        rows,
      )}`,
    );
  }
  if (q.allocations?.length) {
    parts.push(
      `\nManual allocations:\n${renderTable(
        [
          { header: "ID", value: (a: NonNullable<QuotaStatus["allocations"]>[number]) => a.id },
          { header: "GPUS", value: (a) => a.gpus, right: true },
          { header: "TYPE", value: (a) => a.gpuType ?? "any" },
          { header: "NOTE", value: (a) => a.note, max: 40 },
          { header: "CREATED", value: (a) => formatAgo(a.createdAt, now) },
        ],
        q.allocations,
      )}`,
    );
  }
  return parts.join("");
}
