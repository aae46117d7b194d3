// `gantry logs ID [--follow]`: the output tail the agent uploaded. --follow keeps printing new output until
// the job ends: it polls the tail while the job runs (the server keeps only the last 64 KiB, so only the
// part after what was already printed is written) and stops at the terminal transition from the live
// event stream, after printing the final tail.
import { type Api, seg } from "../lib/api.ts";
import { boolFlag, stringFlag } from "../lib/args.ts";
import { sleep } from "../lib/backoff.ts";
import { parseDuration } from "../lib/duration.ts";
import { UsageError } from "../lib/errors.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import { newOutput } from "../lib/log-tail.ts";
import { COMMON_HELP, type Ctx, runCommand } from "./context.ts";
import { stopOnSignal, waitForJob } from "./follow.ts";
import { isTerminal, type Job, type LogTail } from "./types.ts";

const USAGE = `Usage: gantry logs JOB_ID [options]

Prints the job's output: the last 64 KiB its agent uploaded (stdout and stderr together). While the
job runs, the agent uploads it every --log-interval seconds (default 15) when it changed.

Options:
  --follow, -f          keep printing new output until the job ends (Ctrl-C stops following,
                        exit 130)
  --interval D          with --follow, how often to fetch the tail (default 1s)
${COMMON_HELP}

With --json: the API's log document ({jobId, attempt, tail, updatedAt}); with --follow --json,
JSON lines {jobId, attempt, text}, one per piece of new output.
Output older than the 64 KiB window is gone; when more than that arrives between two fetches,
--follow says so on stderr. A retried job's output starts again at each attempt.

${EXIT_CODES_HELP}`;

const SPEC = {
  name: "logs",
  usage: USAGE,
  flags: { follow: { type: "boolean", short: "f" }, interval: { type: "string" } },
  args: { min: 1, max: 1, names: "JOB_ID" },
  notFound: "'gantry jobs' lists your jobs",
} as const;

export async function run(argv: string[]): Promise<number> {
  return runCommand(SPEC, argv, logs);
}

async function logs(ctx: Ctx): Promise<number> {
  const id = ctx.args[0]!;
  const api = ctx.api();
  const follow = boolFlag(ctx.flags, "follow");
  const interval = stringFlag(ctx.flags, "interval");
  const intervalS = interval === undefined ? 1 : parseDuration(interval);
  if (intervalS === null || intervalS <= 0)
    throw new UsageError(`--interval expects a duration like 2s, got "${interval}"`);

  const job = follow ? await api.get<Job>(`/v1/jobs/${seg(id)}`) : null;
  const first = await api.get<LogTail>(`/v1/jobs/${seg(id)}/logs`);
  if (!follow) {
    if (ctx.json) ctx.out.doc(first);
    else ctx.out.print(first.tail);
    return EXIT.ok;
  }

  const printer = new TailPrinter(ctx);
  printer.show(first);
  if (isTerminal(job!.state)) return EXIT.ok;

  const controller = new AbortController();
  const cleanup = stopOnSignal(controller, () => {});
  const poller = pollTail(api, id, intervalS * 1000, controller.signal, (t) => printer.show(t));
  let interrupted = false;
  try {
    await waitForJob(api, ctx.out, id, controller, () => {});
  } finally {
    controller.abort();
    await poller;
    interrupted = cleanup();
  }
  if (interrupted) return EXIT.interrupted;
  // The terminal report carries the final tail, stored in the same transaction as the transition.
  printer.show(await api.get<LogTail>(`/v1/jobs/${seg(id)}/logs`));
  return EXIT.ok;
}

/** Fetches the tail every `ms` until the signal aborts; failures are left to the event feed to report. */
async function pollTail(
  api: Api,
  id: string,
  ms: number,
  signal: AbortSignal,
  onTail: (t: LogTail) => void,
): Promise<void> {
  while (await sleep(ms, signal)) {
    try {
      onTail(await api.get<LogTail>(`/v1/jobs/${seg(id)}/logs`, undefined, signal));
    } catch {
      // try again at the next tick
    }
  }
}

/** Prints what is new in each tail it is shown, across attempts. */
export class TailPrinter {
  private attempt: number | null = null;
  private seen = "";
  constructor(private readonly ctx: Pick<Ctx, "out" | "json">) {}

  show(t: LogTail): void {
    if (this.attempt !== null && t.attempt !== this.attempt) {
      if (this.seen !== "") this.ctx.out.info(`--- attempt ${t.attempt} ---`);
      this.seen = "";
    }
    this.attempt = t.attempt;
    const d = newOutput(this.seen, t.tail);
    if (d.gap) this.ctx.out.info("--- output skipped: more than 64 KiB arrived between two fetches ---");
    this.seen = t.tail;
    if (d.text === "") return;
    if (this.ctx.json) this.ctx.out.jsonLine({ jobId: t.jobId, attempt: t.attempt, text: d.text });
    else this.ctx.out.print(d.text);
  }
}
