// `gantry usage [--from --to --step]`: GPU time by user and GPU type in a window (default the last 24 h),
// running jobs included, like `sreport`; with --step, also period by period.
import { stringFlag } from "../lib/args.ts";
import { formatDuration, parseDuration, parseTimePoint } from "../lib/duration.ts";
import { UsageError } from "../lib/errors.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import { renderTable } from "../lib/table.ts";
import { COMMON_HELP, type Ctx, runCommand } from "./context.ts";

type UsageItem = { user: string; gpuType: string; gpuSeconds: number; jobs: number };

export interface UsageReport {
  from: string;
  to: string;
  totalGpuSeconds: number;
  items: UsageItem[];
  buckets?: { from: string; to: string; totalGpuSeconds: number; items: UsageItem[] }[];
}

const USAGE = `Usage: gantry usage [--from WHEN] [--to WHEN] [--step DURATION] [options]

GPU time used by your tenant, by user and GPU type, in [from, to) (default: the last 24 hours).
Jobs still running count up to now.

Options:
  --from WHEN           start: a date (2026-01-31), a date-time (2026-01-31T08:00:00Z) or a
                        duration ago (7d, 12h)
  --to WHEN             end, in the same forms (default: now)
  --step DURATION       also show each period of this length (1h, 6h, 1d; at least 1m, at
                        most 500 periods)
${COMMON_HELP}

With --json: the API's report (GET /v1/usage), GPU-seconds.

${EXIT_CODES_HELP}`;

const SPEC = {
  name: "usage",
  usage: USAGE,
  flags: { from: { type: "string" }, to: { type: "string" }, step: { type: "string" } },
} as const;

function timeFlag(ctx: Ctx, name: string): string | undefined {
  const raw = stringFlag(ctx.flags, name);
  if (raw === undefined) return undefined;
  const at = parseTimePoint(raw);
  if (at === null)
    throw new UsageError(`--${name} expects a date, a date-time or a duration like 7d, got "${raw}"`);
  return at;
}

function stepFlag(ctx: Ctx): string | undefined {
  const raw = stringFlag(ctx.flags, "step");
  if (raw === undefined) return undefined;
  const seconds = parseDuration(raw);
  if (seconds === null || !Number.isInteger(seconds) || seconds < 60)
    throw new UsageError(
      `--step expects a whole number of seconds, at least 1m (like 1h or 1d), got "${raw}"`,
    );
  return String(seconds);
}

export async function run(argv: string[]): Promise<number> {
  return runCommand(SPEC, argv, async (ctx) => {
    const report = await ctx.api().get<UsageReport>("/v1/usage", {
      from: timeFlag(ctx, "from"),
      to: timeFlag(ctx, "to"),
      step: stepFlag(ctx),
    });
    if (ctx.json) ctx.out.doc(report);
    else ctx.out.print(renderUsage(report));
    return EXIT.ok;
  });
}

const hours = (s: number) => (s / 3600).toFixed(2);

export function renderUsage(r: UsageReport): string {
  const head = `Usage from ${r.from} to ${r.to}: ${hours(r.totalGpuSeconds)} GPU-hours\n`;
  if (r.items.length === 0) return `${head}No GPU time used in this window.\n`;
  return `${head}\n${renderTotals(r)}${r.buckets ? `\n${renderPeriods(r.buckets)}` : ""}`;
}

/** One row per period: its GPU-hours and who used them, largest first. */
function renderPeriods(buckets: NonNullable<UsageReport["buckets"]>): string {
  const byUser = (items: UsageItem[]) => {
    const m = new Map<string, number>();
    for (const i of items) m.set(i.user, (m.get(i.user) ?? 0) + i.gpuSeconds);
    return [...m].sort((a, b) => b[1] - a[1]);
  };
  return renderTable(
    [
      { header: "PERIOD", value: (b: (typeof buckets)[number]) => b.from },
      { header: "GPU-HOURS", value: (b) => hours(b.totalGpuSeconds), right: true },
      {
        header: "BY USER",
        value: (b) =>
          byUser(b.items)
            .map(([u, s]) => `${u} ${hours(s)}`)
            .join(", "),
      },
    ],
    buckets,
  );
}

function renderTotals(r: UsageReport): string {
  return renderTable(
    [
      { header: "USER", value: (i: UsageReport["items"][number]) => i.user },
      { header: "GPU TYPE", value: (i) => i.gpuType },
      { header: "JOBS", value: (i) => i.jobs, right: true },
      { header: "GPU TIME", value: (i) => formatDuration(i.gpuSeconds), right: true },
      { header: "GPU-HOURS", value: (i) => hours(i.gpuSeconds), right: true },
    ],
    r.items,
  );
}
