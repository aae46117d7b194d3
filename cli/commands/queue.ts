// `gantry queue`: the tenant's queue at a glance: counts by state and priority, the oldest wait, the
// fair-share standing, then the running and the pending jobs.
import { stringFlag } from "../lib/args.ts";
import { formatDuration } from "../lib/duration.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import { renderTable } from "../lib/table.ts";
import { COMMON_HELP, type Ctx, runCommand } from "./context.ts";
import { positiveInt } from "./job-spec.ts";
import { renderJobTable } from "./render-jobs.ts";
import type { JobPage } from "./types.ts";

const USAGE = `Usage: gantry queue [options]

Your tenant's queue: jobs by state and priority, how long the oldest has waited, your fair-share
standing (weight, GPUs held, decayed usage), then the running and queued jobs.

Options:
  --limit N             running and queued jobs to list, each (default 20; 0: counts only)
${COMMON_HELP}

With --json: the API's queue statistics (GET /v1/queue) only.

${EXIT_CODES_HELP}`;

const SPEC = { name: "queue", usage: USAGE, flags: { limit: { type: "string" } } } as const;

export interface QueueStats {
  tenantId: string;
  counts: {
    byState: Record<string, number>;
    queuedByPriority: Record<string, number>;
    detail: Record<string, Record<string, number>>;
  };
  oldestQueuedAgeSeconds: number | null;
  oldestQueuedAgeSecondsByPriority: Record<string, number | null>;
  fairShare: {
    weight: number;
    gpusHeld: number;
    decayedGpuSeconds: number;
    averageGpus: number;
    halfLifeSeconds: number;
  };
}

export async function run(argv: string[]): Promise<number> {
  return runCommand(SPEC, argv, queue);
}

async function queue(ctx: Ctx): Promise<number> {
  const limitRaw = stringFlag(ctx.flags, "limit");
  const limit = limitRaw === undefined ? 20 : positiveInt(limitRaw, "limit", 0);
  const api = ctx.api();
  const stats = await api.get<QueueStats>("/v1/queue");
  if (ctx.json) {
    ctx.out.doc(stats);
    return EXIT.ok;
  }
  ctx.out.print(renderQueue(stats));
  if (limit === 0) return EXIT.ok;
  const now = Date.now();
  for (const state of ["running", "queued"] as const) {
    if (!stats.counts.byState[state]) continue;
    const page = await api.get<JobPage>("/v1/jobs", { state, limit: Math.min(limit, 500) });
    // The list is the history database: it may lag the live counts by a moment.
    if (page.items.length === 0) continue;
    const more = (stats.counts.byState[state] ?? 0) - page.items.length;
    ctx.out.line();
    ctx.out.line(`${state === "running" ? "Running" : "Queued"}:`);
    ctx.out.print(renderJobTable(state === "queued" ? page.items.reverse() : page.items, now));
    if (more > 0) ctx.out.line(`… and ${more} more ('gantry jobs --state ${state}')`);
  }
  return EXIT.ok;
}

export function renderQueue(s: QueueStats): string {
  const by = s.counts.byState;
  const f = s.fairShare;
  const head = [
    `Tenant ${s.tenantId}: ${by.queued ?? 0} queued, ${by.scheduled ?? 0} scheduled, ${by.running ?? 0} running`,
    `Fair share: weight ${f.weight}, ${f.gpusHeld} GPU(s) held, ${f.averageGpus} GPUs on average, ${(f.decayedGpuSeconds / 3600).toFixed(2)} GPU-hours of decayed usage (half-life ${formatDuration(f.halfLifeSeconds)})`,
  ];
  const priorities = ["high", "normal", "low"];
  const rows = ["queued", "scheduled", "running"].map((state) => ({
    state,
    counts: s.counts.detail[state] ?? {},
    total: by[state] ?? 0,
  }));
  const table = renderTable(
    [
      { header: "STATE", value: (r: (typeof rows)[number]) => r.state },
      ...priorities.map((p) => ({
        header: p,
        value: (r: (typeof rows)[number]) => r.counts[p] ?? 0,
        right: true,
      })),
      { header: "TOTAL", value: (r) => r.total, right: true },
      {
        header: "OLDEST WAIT",
        value: (r) =>
          r.state === "queued" && s.oldestQueuedAgeSeconds !== null
            ? formatDuration(s.oldestQueuedAgeSeconds)
            : "-",
        right: true,
      },
    ],
    rows,
  );
  return `${head.join("\n")}\n\n${table}`;
}
