// `gantry show ID`: one job in full (like `scontrol show job`), with its transitions.
import { seg } from "../lib/api.ts";
import { formatAgo, formatDuration } from "../lib/duration.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import { renderKeyValues, renderTable } from "../lib/table.ts";
import { COMMON_HELP, type Ctx, runCommand } from "./context.ts";
import { clock, gpuShape, runtime } from "./render-jobs.ts";
import { isArrayId, type Job, type JobArray, type JobEventRow } from "./types.ts";

const USAGE = `Usage: gantry show JOB_ID|ARRAY_ID [options]

Shows a job: its spec, state, where it runs, how it ended, and every transition. For an array id
(arr_…): its size and its tasks by state ('gantry jobs --array ID' lists them).

${COMMON_HELP}

With --json: the job as GET /v1/jobs/{id} returns it (transitions: GET /v1/jobs/{id}/events), or
the array as GET /v1/arrays/{id} does.

${EXIT_CODES_HELP}`;

const SPEC = {
  name: "show",
  usage: USAGE,
  args: { min: 1, max: 1, names: "JOB_ID or ARRAY_ID" },
  notFound: "'gantry jobs' lists your jobs",
} as const;

export async function run(argv: string[]): Promise<number> {
  return runCommand(SPEC, argv, show);
}

async function show(ctx: Ctx): Promise<number> {
  const id = ctx.args[0]!;
  const api = ctx.api();
  if (isArrayId(id)) {
    const a = await api.get<JobArray>(`/v1/arrays/${seg(id)}`);
    if (ctx.json) ctx.out.doc(a);
    else ctx.out.print(renderArray(a, Date.now()));
    return EXIT.ok;
  }
  const job = await api.get<Job>(`/v1/jobs/${seg(id)}`);
  if (ctx.json) {
    ctx.out.doc(job);
    return EXIT.ok;
  }
  const events = await api.get<{ items: JobEventRow[] }>(`/v1/jobs/${seg(id)}/events`);
  ctx.out.print(renderJob(job, Date.now()));
  if (events.items.length > 0) {
    ctx.out.line();
    ctx.out.print(
      renderTable(
        [
          { header: "TIME", value: (e: JobEventRow) => clock(e.at) },
          { header: "FROM", value: (e) => e.from ?? "-" },
          { header: "TO", value: (e) => e.to },
          { header: "ATTEMPT", value: (e) => e.attempt, right: true },
          { header: "REASON", value: (e) => e.reason },
          { header: "EXIT", value: (e) => e.exitCode, right: true },
          { header: "WORKER", value: (e) => e.workerId },
          { header: "MESSAGE", value: (e) => e.message, max: 80 },
        ],
        events.items,
      ),
    );
  }
  return EXIT.ok;
}

const when = (iso: string | null, now: number) => (iso ? `${iso} (${formatAgo(iso, now)})` : null);

export function renderJob(j: Job, now: number): string {
  const state = [j.state, j.cancelRequested && j.state !== "cancelled" ? "(cancellation requested)" : ""]
    .filter(Boolean)
    .join(" ");
  const kv = (o: Record<string, string>) =>
    Object.keys(o).length
      ? Object.entries(o)
          .map(([k, v]) => `${k}=${v}`)
          .join(" ")
      : null;
  return renderKeyValues([
    ["Job", j.id],
    ["Name", j.name],
    ["Tenant", j.tenantId],
    ["User", j.user],
    ["State", state],
    ["Reason", j.reason || j.message ? [j.reason, j.message].filter(Boolean).join(": ") : undefined],
    ["Priority", j.priority],
    ["GPUs", gpuShape(j)],
    ["Command", j.command.map(quote).join(" ")],
    ["Env", j.env && Object.keys(j.env).length ? Object.keys(j.env).join(" ") : undefined],
    ["Labels", kv(j.labels ?? {}) ?? undefined],
    ["Max runtime", j.maxRuntimeSeconds ? formatDuration(j.maxRuntimeSeconds) : "none"],
    ["Attempt", `${j.attempt} (retries allowed: ${j.maxRetries})`],
    ["Worker", j.workerId ? `${j.workerId} GPUs ${(j.gpuIndices ?? []).join(",")}` : undefined],
    ["Exit code", j.exitCode ?? undefined],
    ["Array", j.arrayId ? `${j.arrayId} index ${j.arrayIndex}` : undefined],
    [
      "Depends on",
      j.dependsOn?.length ? j.dependsOn.map((d) => `${d.job} (${d.condition})`).join(", ") : undefined,
    ],
    ["Submitted", when(j.submittedAt, now)],
    ["Started", when(j.startedAt, now) ?? undefined],
    ["Finished", when(j.finishedAt, now) ?? undefined],
    ["Runtime", j.startedAt ? runtime(j, now) : undefined],
    ["Next attempt", when(j.nextAttemptAt, now) ?? undefined],
    [
      "Warnings",
      j.warnings?.length ? j.warnings.map((w) => `${w.name}: ${w.message}`).join("\n") : undefined,
    ],
  ]);
}

export function renderArray(a: JobArray, now: number): string {
  const counts = Object.entries(a.counts)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state}`)
    .join(", ");
  return renderKeyValues([
    ["Array", a.id],
    ["Name", a.name],
    ["State", a.state],
    ["Tasks", `${a.size}${counts ? ` (${counts})` : ""}`],
    ["Submitted", when(a.submittedAt, now)],
  ]);
}

/** Shell-style quoting for display, so the command line can be copied back. */
export function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
