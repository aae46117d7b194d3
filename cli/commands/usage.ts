// `gantry usage [--from --to]`: GPU time by user and GPU type in a window (default the last 24 h),
// running jobs included, like `sreport`.
import { stringFlag } from "../lib/args.ts";
import { formatDuration, parseTimePoint } from "../lib/duration.ts";
import { UsageError } from "../lib/errors.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import { renderTable } from "../lib/table.ts";
import { COMMON_HELP, type Ctx, runCommand } from "./context.ts";

export interface UsageReport {
  from: string;
  to: string;
  totalGpuSeconds: number;
  items: { user: string; gpuType: string; gpuSeconds: number; jobs: number }[];
}

const USAGE = `Usage: gantry usage [--from WHEN] [--to WHEN] [options]

GPU time used by your tenant, by user and GPU type, in [from, to) (default: the last 24 hours).
Jobs still running count up to now.

Options:
  --from WHEN           start: a date (2026-01-31), a date-time (2026-01-31T08:00:00Z) or a
                        duration ago (7d, 12h)
  --to WHEN             end, in the same forms (default: now)
${COMMON_HELP}

With --json: the API's report (GET /v1/usage), GPU-seconds.

${EXIT_CODES_HELP}`;

const SPEC = {
  name: "usage",
  usage: USAGE,
  flags: { from: { type: "string" }, to: { type: "string" } },
} as const;

function timeFlag(ctx: Ctx, name: string): string | undefined {
  const raw = stringFlag(ctx.flags, name);
  if (raw === undefined) return undefined;
  const at = parseTimePoint(raw);
  if (at === null)
    throw new UsageError(`--${name} expects a date, a date-time or a duration like 7d, got "${raw}"`);
  return at;
}

export async function run(argv: string[]): Promise<number> {
  return runCommand(SPEC, argv, async (ctx) => {
    const report = await ctx
      .api()
      .get<UsageReport>("/v1/usage", { from: timeFlag(ctx, "from"), to: timeFlag(ctx, "to") });
    if (ctx.json) ctx.out.doc(report);
    else ctx.out.print(renderUsage(report));
    return EXIT.ok;
  });
}

const hours = (s: number) => (s / 3600).toFixed(2);

export function renderUsage(r: UsageReport): string {
  const head = `Usage from ${r.from} to ${r.to}: ${hours(r.totalGpuSeconds)} GPU-hours\n`;
  if (r.items.length === 0) return `${head}No GPU time used in this window.\n`;
  return `${head}\n${renderTable(
    [
      { header: "USER", value: (i: UsageReport["items"][number]) => i.user },
      { header: "GPU TYPE", value: (i) => i.gpuType },
      { header: "JOBS", value: (i) => i.jobs, right: true },
      { header: "GPU TIME", value: (i) => formatDuration(i.gpuSeconds), right: true },
      { header: "GPU-HOURS", value: (i) => hours(i.gpuSeconds), right: true },
    ],
    r.items,
  )}`;
}
