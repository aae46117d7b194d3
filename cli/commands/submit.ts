// `gantry submit [options] -- CMD ARGS...`: POST /v1/jobs, and with --wait follow the job (or every task of
// an array) to its end, printing each transition, and exit 0 only if it succeeded.
import { boolFlag, stringFlag } from "../lib/args.ts";
import { UsageError } from "../lib/errors.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import type { LiveEvent } from "../lib/live-events.ts";
import { COMMON_HELP, type Ctx, runCommand } from "./context.ts";
import { newFeed, stopOnSignal, waitForArray, waitForJob } from "./follow.ts";
import { buildSubmission, JOB_FLAGS, JOB_FLAGS_HELP, splitCommand } from "./job-spec.ts";
import { gpuShape, redundantReason, runtime, transitionLine } from "./render-jobs.ts";
import type { Job } from "./types.ts";

const USAGE = `Usage: gantry submit [options] -- CMD [ARGS...]

Submits a job: everything after "--" is the command, run as is (no shell; use
"-- sh -c '...'" for pipes and variables).

${JOB_FLAGS_HELP}

Submit options:
  --idempotency-key KEY submitting again with the same key within 24 h returns the first job
  --wait                follow the job until it ends, printing each transition; exit 0 if it
                        succeeded, 1 if it failed or was cancelled (the job's own exit code is in
                        the output and in --json's exitCode). With --array, waits for every task
                        and exits 0 only if all succeeded.
                        Ctrl-C stops waiting (exit 130); the job keeps running.

${COMMON_HELP}

Output: the job's id ("Submitted job job_…"); with --json the job as the API returned it (after
--wait: the job as it ended; for an array, GET /v1/arrays/{id}). Transitions go to stdout, or to
stderr with --json.

Examples:
  gantry submit --gpus 2 --gpu-type H100 --max-runtime 2h -- python train.py --epochs 10
  gantry submit --array 8 --label sweep=lr -- sh -c 'python sweep.py --index $GANTRY_ARRAY_INDEX'
  gantry submit --wait -- nvidia-smi

${EXIT_CODES_HELP}`;

const SPEC = {
  name: "submit",
  usage: USAGE,
  flags: { ...JOB_FLAGS, "idempotency-key": { type: "string" }, wait: { type: "boolean" } },
  args: { min: 0, max: Number.POSITIVE_INFINITY, names: "" },
} as const;

export async function run(argv: string[]): Promise<number> {
  const { flags, command } = splitCommand(argv);
  return runCommand(SPEC, flags, (ctx) => submit(ctx, command));
}

async function submit(ctx: Ctx, command: string[]): Promise<number> {
  if (ctx.args.length > 0) {
    throw new UsageError(
      `put the job's command after "--": gantry submit [options] -- ${ctx.args.join(" ")}`,
    );
  }
  const body = buildSubmission(ctx.flags, command);
  const wait = boolFlag(ctx.flags, "wait");
  const key = stringFlag(ctx.flags, "idempotency-key");
  const api = ctx.api();
  const controller = new AbortController();

  // An array's tasks are followed through the tenant's stream, opened before the submission so that no
  // transition can happen before we listen.
  const arrayFeed = wait && body.array ? newFeed(api, ctx.out, controller, {}) : null;
  if (arrayFeed) await arrayFeed.ready;

  const res = await api.request<Job>("POST", "/v1/jobs", {
    body,
    ...(key ? { headers: { "idempotency-key": key } } : {}),
  });
  const job = res.body;
  const replay = res.status === 200;
  announce(ctx, job, replay);

  if (!wait) {
    controller.abort();
    if (ctx.json) ctx.out.doc(job);
    return EXIT.ok;
  }

  const progress = (line: string) => (ctx.json ? ctx.out.info(line) : ctx.out.line(line));
  const cleanup = stopOnSignal(controller, () => {
    const what = job.array ? `array ${job.array.id}` : `job ${job.id}`;
    ctx.out.info(`\ngantry: stopped waiting; ${what} carries on ('gantry cancel ${job.id}' stops it)`);
  });
  try {
    if (arrayFeed && job.array) {
      const array = job.array;
      const summary = await waitForArray(api, arrayFeed, controller, array, (e: LiveEvent) =>
        progress(transitionLine(e, true)),
      );
      if (cleanup()) return EXIT.interrupted;
      const c = summary?.counts ?? {};
      const line = `Array ${array.id}: ${c.succeeded ?? 0} succeeded, ${c.failed ?? 0} failed, ${c.cancelled ?? 0} cancelled`;
      if (ctx.json) {
        ctx.out.info(line);
        ctx.out.doc(summary);
      } else ctx.out.line(line);
      return (c.succeeded ?? 0) === array.size ? EXIT.ok : EXIT.failed;
    }
    const final = await waitForJob(api, ctx.out, job.id, controller, (e) =>
      progress(transitionLine(e, false)),
    );
    if (cleanup()) return EXIT.interrupted;
    const line = outcome(final, Date.now());
    if (ctx.json) {
      ctx.out.info(line);
      ctx.out.doc(final);
    } else ctx.out.line(line);
    return final.state === "succeeded" ? EXIT.ok : EXIT.failed;
  } finally {
    cleanup();
    controller.abort();
  }
}

function announce(ctx: Ctx, job: Job, replay: boolean): void {
  const what = job.array
    ? `array ${job.array.id} (${job.array.size} tasks, first job ${job.id})`
    : `job ${job.id}`;
  const text = `${replay ? "Already submitted (same idempotency key):" : "Submitted"} ${what}`;
  // The id is the result for people; with --json the document is, so the line moves to stderr.
  if (ctx.json) ctx.out.info(text);
  else ctx.out.line(text);
  for (const w of job.warnings ?? []) {
    ctx.out.info(`warning: ${w.message.includes(w.name) ? w.message : `policy "${w.name}": ${w.message}`}`);
  }
}

/** The last line of --wait: how the job ended, for how long, with what code. */
export function outcome(j: Job, now: number): string {
  const details = [`${gpuShape(j)} GPUs`, `ran ${runtime(j, now)}`];
  if (j.exitCode !== null) details.push(`exit code ${j.exitCode}`);
  if (j.attempt > 1) details.push(`attempt ${j.attempt}`);
  const reason = redundantReason(j.reason, j.state) ? null : j.reason;
  const why =
    j.state !== "succeeded" && (reason || j.message)
      ? `: ${[reason, j.message].filter(Boolean).join(" — ")}`
      : "";
  return `Job ${j.id} ${j.state} (${details.join(", ")})${why}`;
}
