// `gantry jobs`: the tenant's jobs, newest first, like squeue/sacct; --watch then prints every transition
// as it happens (the live stream is opened before the list is read, so nothing falls in between).
import { boolFlag, listFlag, stringFlag } from "../lib/args.ts";
import { UsageError } from "../lib/errors.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import { COMMON_HELP, type Ctx, runCommand } from "./context.ts";
import { newFeed, stopOnSignal } from "./follow.ts";
import { parseLabels, parsePriority, positiveInt } from "./job-spec.ts";
import { renderJobTable, transitionLine } from "./render-jobs.ts";
import { JOB_STATES, type Job, type JobPage } from "./types.ts";

const USAGE = `Usage: gantry jobs [options]

Lists your tenant's jobs, newest first.

Options:
  --state STATE         queued, scheduled, running, succeeded, failed or cancelled
  --user NAME           only this user's jobs
  --priority P          high, normal or low
  --label KEY=VALUE     only jobs with this label
  --array ID            only the tasks of this array
  --limit N             jobs per page, 1-500 (default 50)
  --all                 every page (follows nextCursor)
  --watch               after the list, print every transition of the tenant's jobs as it
                        happens (filtered by --user and --priority) until Ctrl-C (exit 0)
${COMMON_HELP}

Columns: STATE ends in "*" when cancellation was requested; RUNTIME is the time running so far.
With --json: the API's page ({items, nextCursor}; with --all every item and nextCursor null).
With --watch --json: JSON lines, the page first, then one event object per transition.

${EXIT_CODES_HELP}`;

const SPEC = {
  name: "jobs",
  usage: USAGE,
  flags: {
    state: { type: "string" },
    user: { type: "string" },
    priority: { type: "string" },
    label: { type: "string", multiple: true },
    array: { type: "string" },
    limit: { type: "string" },
    all: { type: "boolean" },
    watch: { type: "boolean" },
  },
} as const;

export async function run(argv: string[]): Promise<number> {
  return runCommand(SPEC, argv, jobs);
}

export function listQuery(ctx: Ctx) {
  const state = stringFlag(ctx.flags, "state");
  if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state)) {
    throw new UsageError(`--state must be one of ${JOB_STATES.join(", ")}, got "${state}"`);
  }
  const priority = stringFlag(ctx.flags, "priority");
  const labels = Object.entries(parseLabels(listFlag(ctx.flags, "label")));
  if (labels.length > 1) throw new UsageError("--label filters on one label at a time");
  const limit = stringFlag(ctx.flags, "limit");
  const n = limit === undefined ? undefined : positiveInt(limit, "limit");
  if (n !== undefined && n > 500) throw new UsageError(`--limit is at most 500, got ${n}`);
  return {
    state,
    user: stringFlag(ctx.flags, "user"),
    priority: priority === undefined ? undefined : parsePriority(priority),
    label: labels[0] ? `${labels[0][0]}:${labels[0][1]}` : undefined,
    array: stringFlag(ctx.flags, "array"),
    limit: n ?? (boolFlag(ctx.flags, "all") ? 500 : 50),
  };
}

async function jobs(ctx: Ctx): Promise<number> {
  const query = listQuery(ctx);
  const api = ctx.api();
  const watch = boolFlag(ctx.flags, "watch");
  const controller = new AbortController();
  const feed = watch ? newFeed(api, ctx.out, controller, {}) : null;
  if (feed) await feed.ready;

  let page = await api.get<JobPage>("/v1/jobs", query);
  if (boolFlag(ctx.flags, "all")) {
    const items: Job[] = [...page.items];
    for (let cursor = page.nextCursor; cursor; ) {
      const next = await api.get<JobPage>("/v1/jobs", { ...query, cursor });
      items.push(...next.items);
      cursor = next.nextCursor;
    }
    page = { items, nextCursor: null };
  }

  if (ctx.json) {
    if (watch) ctx.out.jsonLine(page);
    else ctx.out.doc(page);
  } else if (page.items.length === 0) {
    ctx.out.line("No jobs.");
  } else {
    ctx.out.print(renderJobTable(page.items, Date.now()));
    if (page.nextCursor) ctx.out.info(`(more jobs: --all for every page, or --limit N)`);
  }
  if (!feed) return EXIT.ok;

  if (!ctx.json) ctx.out.info("Watching for transitions (Ctrl-C to stop)...");
  const cleanup = stopOnSignal(controller, () => {});
  try {
    for await (const e of feed) {
      if (query.user && e.job?.user !== query.user) continue;
      if (query.priority && e.job?.priority !== query.priority) continue;
      if (ctx.json) ctx.out.jsonLine(e);
      else ctx.out.line(transitionLine(e, true));
    }
  } finally {
    cleanup();
    controller.abort();
  }
  return EXIT.ok;
}
