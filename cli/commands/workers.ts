// `gantry workers` (platform admin): every registered worker with its GPUs and how many are busy, live
// from the fleet shards; `gantry workers drain ID` stops new work going to one.
import { seg } from "../lib/api.ts";
import { formatAgo } from "../lib/duration.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import { renderTable } from "../lib/table.ts";
import { COMMON_HELP, type Ctx, dispatch, runCommand } from "./context.ts";

export interface Worker {
  id: string;
  poolId: string;
  hostname: string;
  state: string;
  draining: boolean;
  gpus: { index: number; model: string; type: string; memoryMiB: number | null }[];
  freeGpuIndices: number[];
  labels: Record<string, string>;
  agentVersion: string | null;
  registeredAt: string;
  lastSeenAt: string;
  leases: { jobId: string; tenantId: string; lease: number; gpuIndices: number[]; state: string }[];
}

const LIST_USAGE = `Usage: gantry workers [list] [options]

Every registered worker (platform admin token): pool, host, state, GPUs, how many are busy, an
occupancy map (one character per GPU: "#" busy, "." free), jobs and when it was last heard from.

${COMMON_HELP}

With --json: the API's list (GET /v1/workers).

${EXIT_CODES_HELP}`;

const DRAIN_USAGE = `Usage: gantry workers drain WORKER_ID [options]

Drains a worker (platform admin token): it gets no new work; running jobs finish.

${COMMON_HELP}

${EXIT_CODES_HELP}`;

export async function run(argv: string[]): Promise<number> {
  return dispatch(
    "workers",
    "The fleet's workers (platform admin).",
    {
      list: { summary: "list workers with their GPU occupancy (default)", run: list },
      drain: { summary: "stop sending new work to a worker", run: drain },
    },
    argv,
    "list",
  );
}

function list(argv: string[]): Promise<number> {
  return runCommand({ name: "workers", usage: LIST_USAGE, role: "admin" }, argv, async (ctx: Ctx) => {
    const page = await ctx.api().get<{ items: Worker[] }>("/v1/workers");
    if (ctx.json) ctx.out.doc(page);
    else if (page.items.length === 0)
      ctx.out.line("No workers. Start one with 'gantry agent --url URL --join-token T'.");
    else ctx.out.print(renderWorkers(page.items, Date.now()));
    return EXIT.ok;
  });
}

function drain(argv: string[]): Promise<number> {
  return runCommand(
    {
      name: "workers drain",
      usage: DRAIN_USAGE,
      role: "admin",
      args: { min: 1, max: 1, names: "WORKER_ID" },
      notFound: "'gantry workers' lists the workers",
    },
    argv,
    async (ctx) => {
      const w = await ctx.api().post<Worker>(`/v1/workers/${seg(ctx.args[0]!)}/drain`);
      if (ctx.json) ctx.out.doc(w);
      else ctx.out.line(`Draining worker ${ctx.args[0]}: no new work; running jobs finish.`);
      return EXIT.ok;
    },
  );
}

/** "2xH100" or "1xA100+2xH100". */
function gpuSummary(w: Worker): string {
  const byType = new Map<string, number>();
  for (const g of w.gpus) byType.set(g.type, (byType.get(g.type) ?? 0) + 1);
  return [...byType].map(([t, n]) => `${n}x${t}`).join("+") || "-";
}

/** One character per GPU in index order: "#" busy, "." free. */
export function occupancy(w: Pick<Worker, "gpus" | "freeGpuIndices">): string {
  const free = new Set(w.freeGpuIndices);
  return [...w.gpus]
    .sort((a, b) => a.index - b.index)
    .map((g) => (free.has(g.index) ? "." : "#"))
    .join("");
}

export function renderWorkers(workers: Worker[], now: number): string {
  return renderTable(
    [
      { header: "ID", value: (w: Worker) => w.id },
      { header: "POOL", value: (w) => w.poolId },
      { header: "HOST", value: (w) => w.hostname, max: 30 },
      { header: "STATE", value: (w) => (w.draining ? `${w.state},draining` : w.state) },
      { header: "GPUS", value: (w) => gpuSummary(w) },
      {
        header: "BUSY",
        value: (w) => `${w.gpus.length - w.freeGpuIndices.length}/${w.gpus.length}`,
        right: true,
      },
      { header: "OCCUPANCY", value: (w) => `[${occupancy(w)}]` },
      { header: "JOBS", value: (w) => w.leases.length, right: true },
      { header: "LAST SEEN", value: (w) => formatAgo(w.lastSeenAt, now) },
    ],
    [...workers].sort((a, b) => a.poolId.localeCompare(b.poolId) || a.hostname.localeCompare(b.hostname)),
  );
}
