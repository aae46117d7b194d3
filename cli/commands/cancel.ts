// `gantry cancel ID`: a queued job is cancelled at once; a scheduled or running one is stopped by its agent
// and then cancelled. A job that already ended is a conflict (exit 5).
import { seg } from "../lib/api.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import { COMMON_HELP, type Ctx, runCommand } from "./context.ts";
import { isArrayId, type Job, type JobArray } from "./types.ts";

const USAGE = `Usage: gantry cancel JOB_ID|ARRAY_ID [options]

Cancels a job. Queued: cancelled at once. Scheduled or running: its agent stops the process, then
the job is cancelled ('gantry show ID' or 'gantry jobs --watch' shows when). An array id (arr_…)
cancels every unfinished task of the array.

${COMMON_HELP}

With --json: the job as POST /v1/jobs/{id}/cancel returns it (an array: POST /v1/arrays/{id}/cancel).

${EXIT_CODES_HELP}`;

const SPEC = {
  name: "cancel",
  usage: USAGE,
  args: { min: 1, max: 1, names: "JOB_ID or ARRAY_ID" },
  notFound: "'gantry jobs' lists your jobs",
} as const;

export async function run(argv: string[]): Promise<number> {
  return runCommand(SPEC, argv, cancel);
}

async function cancel(ctx: Ctx): Promise<number> {
  const id = ctx.args[0]!;
  if (isArrayId(id)) {
    const a = await ctx.api().post<JobArray & { cancelled: number }>(`/v1/arrays/${seg(id)}/cancel`);
    if (ctx.json) ctx.out.doc(a);
    else ctx.out.line(`Cancelled ${a.cancelled} unfinished task(s) of array ${a.id} (${a.size} tasks).`);
    return EXIT.ok;
  }
  const job = await ctx.api().post<Job>(`/v1/jobs/${seg(id)}/cancel`);
  if (ctx.json) ctx.out.doc(job);
  else if (job.state === "cancelled") ctx.out.line(`Cancelled job ${job.id}.`);
  else {
    ctx.out.line(
      `Cancellation requested for job ${job.id} (${job.state}${job.workerId ? ` on worker ${job.workerId}` : ""}): its agent stops it, then it is cancelled.`,
    );
  }
  return EXIT.ok;
}
