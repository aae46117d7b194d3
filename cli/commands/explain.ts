// `gantry explain ID`: why a job is pending (or where it runs, or how it ended) in one reason code with the
// numbers behind it, its place in the tenant's queue and an estimated start when there is one.
import { seg } from "../lib/api.ts";
import { formatAgo } from "../lib/duration.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import { renderKeyValues } from "../lib/table.ts";
import { COMMON_HELP, type Ctx, runCommand } from "./context.ts";
import type { Explanation } from "./types.ts";

const USAGE = `Usage: gantry explain JOB_ID [options]

Why is this job pending? One reason, the first that applies, in this order:
  PolicyDenied, Dependency, Backoff, QuotaExceeded, NoMatchingWorkers, InsufficientCapacity,
  PriorityOrFairShare (others are ahead: the position says how many).
For a job that is not pending: where it runs, or how it ended.

${COMMON_HELP}

With --json: the API's explanation ({state, reason: {code, message}, position?, estimatedStart?}).

${EXIT_CODES_HELP}`;

const SPEC = {
  name: "explain",
  usage: USAGE,
  args: { min: 1, max: 1, names: "JOB_ID" },
  notFound: "'gantry jobs' lists your jobs",
} as const;

export async function run(argv: string[]): Promise<number> {
  return runCommand(SPEC, argv, explain);
}

async function explain(ctx: Ctx): Promise<number> {
  const id = ctx.args[0]!;
  const x = await ctx.api().get<Explanation>(`/v1/jobs/${seg(id)}/explain`);
  if (ctx.json) ctx.out.doc(x);
  else ctx.out.print(renderExplanation(x, Date.now()));
  return EXIT.ok;
}

export function renderExplanation(x: Explanation, now: number): string {
  return renderKeyValues([
    ["Job", x.jobId],
    ["State", x.state],
    ["Reason", x.reason.code],
    ["", x.reason.message],
    [
      "Position",
      x.position
        ? `${x.position.tenant} job(s) ahead in the tenant's queue (${x.position.priority} at the same priority)`
        : undefined,
    ],
    [
      "Estimated start",
      x.estimatedStart
        ? `${formatAgo(x.estimatedStart.at, now)} (${x.estimatedStart.at}; ${x.estimatedStart.basis})`
        : undefined,
    ],
  ]);
}
