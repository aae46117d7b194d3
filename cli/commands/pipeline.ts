// `gantry pipeline [list|create|show|run|cancel]`: pipelines are DAGs of job steps; a run starts every
// step's job at once, wired by dependencies, on the same queue, policies and quota as any job.
import { readFileSync } from "node:fs";
import { seg } from "../lib/api.ts";
import { boolFlag, stringFlag } from "../lib/args.ts";
import { formatAgo } from "../lib/duration.ts";
import { UsageError } from "../lib/errors.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import { renderKeyValues, renderTable } from "../lib/table.ts";
import { COMMON_HELP, dispatch, runCommand } from "./context.ts";

interface StepDep {
  step: string;
  condition: string;
}

export interface Pipeline {
  id: string;
  name: string;
  version: number;
  steps: { name: string; job: { name: string; gpus: number; gpuType?: string }; dependsOn: StepDep[] }[];
  createdAt: string;
  updatedAt: string;
}

export interface Run {
  id: string;
  pipelineId: string;
  name: string;
  version: number;
  state: string;
  createdAt: string;
  steps: {
    name: string;
    jobId: string;
    dependsOn: StepDep[];
    state: string;
    reason: string | null;
    exitCode: number | null;
  }[];
}

const NOT_FOUND = "'gantry pipeline list' lists your pipelines";
const usage = (synopsis: string, text: string, options = "") =>
  `Usage: gantry pipeline ${synopsis}\n\n${text}\n${options ? `\nOptions:\n${options}\n` : ""}\n${COMMON_HELP}\n\n${EXIT_CODES_HELP}`;

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const deps = (d: StepDep[]) =>
  d.map((x) => (x.condition === "succeeded" ? x.step : `${x.step}(${x.condition})`)).join(",") || "-";

export async function run(argv: string[]): Promise<number> {
  return dispatch(
    "pipeline",
    'Pipelines: a DAG of named job steps (dependsOn: step names = "after it succeeded", or\n' +
      '{"step": S, "condition": "finished"} = "after it ended, whatever the outcome").',
    {
      list: { summary: "the tenant's pipelines (default)", run: list },
      create: { summary: "store a pipeline from a JSON file", run: create },
      show: { summary: "show a pipeline, or one of its runs", run: show },
      run: { summary: "start a run (every step's job at once)", run: start },
      cancel: { summary: "cancel a run's unfinished jobs", run: cancel },
    },
    argv,
    "list",
  );
}

function list(argv: string[]): Promise<number> {
  const spec = { name: "pipeline list", usage: usage("[list] [options]", "Lists the tenant's pipelines.") };
  return runCommand(spec, argv, async (ctx) => {
    const page = await ctx.api().get<{ items: Pipeline[] }>("/v1/pipelines");
    if (ctx.json) ctx.out.doc(page);
    else if (page.items.length === 0)
      ctx.out.line("No pipelines yet — create one with 'gantry pipeline create -f FILE'.");
    else {
      const now = Date.now();
      ctx.out.print(
        renderTable(
          [
            { header: "ID", value: (p: Pipeline) => p.id },
            { header: "NAME", value: (p) => p.name },
            { header: "VERSION", value: (p) => p.version, right: true },
            { header: "STEPS", value: (p) => p.steps.length, right: true },
            { header: "UPDATED", value: (p) => formatAgo(p.updatedAt, now) },
          ],
          page.items,
        ),
      );
    }
    return EXIT.ok;
  });
}

function create(argv: string[]): Promise<number> {
  const spec = {
    name: "pipeline create",
    usage: usage(
      "create -f FILE [options]",
      'Stores a pipeline. FILE ("-" for stdin) is JSON: {"name": …, "steps": [{"name": …, "job": {…as for\n' +
        'POST /v1/jobs…}, "dependsOn": ["other-step", {"step": "x", "condition": "finished"}]}]}.\n' +
        "A cycle or an unknown step is refused. Prints the pipeline id.",
      "  -f, --file FILE       the definition (JSON)",
    ),
    flags: { file: { type: "string", short: "f" } },
  } as const;
  return runCommand(spec, argv, async (ctx) => {
    const file = stringFlag(ctx.flags, "file");
    if (!file) throw new UsageError("missing -f FILE: the pipeline definition as JSON ('-' reads stdin)");
    let body: unknown;
    try {
      body = JSON.parse(readFileSync(file === "-" ? 0 : file, "utf8"));
    } catch (e) {
      throw new UsageError(`cannot read ${file === "-" ? "stdin" : file} as JSON: ${(e as Error).message}`);
    }
    const p = await ctx.api().post<Pipeline>("/v1/pipelines", body);
    if (ctx.json) ctx.out.doc(p);
    else ctx.out.line(p.id);
    return EXIT.ok;
  });
}

function show(argv: string[]): Promise<number> {
  const spec = {
    name: "pipeline show",
    usage: usage(
      "show PIPELINE_ID [RUN_ID] [options]",
      "Shows a pipeline's steps and recent runs, or one run's steps.",
    ),
    args: { min: 1, max: 2, names: "PIPELINE_ID [RUN_ID]" },
    notFound: NOT_FOUND,
  } as const;
  return runCommand(spec, argv, async (ctx) => {
    const [pid, runId] = ctx.args as [string, string | undefined];
    const api = ctx.api();
    if (runId) {
      const r = await api.get<Run>(`/v1/pipelines/${seg(pid)}/runs/${seg(runId)}`);
      if (ctx.json) ctx.out.doc(r);
      else ctx.out.print(renderRun(r));
      return EXIT.ok;
    }
    const p = await api.get<Pipeline>(`/v1/pipelines/${seg(pid)}`);
    const runs = await api.get<{ items: Run[] }>(`/v1/pipelines/${seg(pid)}/runs`);
    if (ctx.json) {
      ctx.out.doc({ ...p, runs: runs.items });
      return EXIT.ok;
    }
    const now = Date.now();
    ctx.out.print(
      renderKeyValues([
        ["Pipeline", p.id],
        ["Name", p.name],
        ["Version", p.version],
      ]),
    );
    ctx.out.line();
    ctx.out.print(
      renderTable(
        [
          { header: "STEP", value: (s: Pipeline["steps"][number]) => s.name },
          { header: "JOB", value: (s) => s.job.name },
          { header: "GPUS", value: (s) => `${s.job.gpus}${s.job.gpuType ? `×${s.job.gpuType}` : ""}` },
          { header: "AFTER", value: (s) => deps(s.dependsOn) },
        ],
        p.steps,
      ),
    );
    if (runs.items.length) {
      ctx.out.line();
      ctx.out.print(
        renderTable(
          [
            { header: "RUN", value: (r: Run) => r.id },
            { header: "VERSION", value: (r) => r.version, right: true },
            { header: "STATE", value: (r) => r.state },
            { header: "STARTED", value: (r) => formatAgo(r.createdAt, now) },
          ],
          runs.items,
        ),
      );
    }
    return EXIT.ok;
  });
}

function start(argv: string[]): Promise<number> {
  const spec = {
    name: "pipeline run",
    usage: usage(
      "run PIPELINE_ID [--wait] [options]",
      "Starts a run: every step's job is created at once, wired by its dependencies. With --wait, follows\n" +
        "the run until every step has ended; exits 1 if the run did not succeed.",
      "  --wait                follow the run until it ends",
    ),
    args: { min: 1, max: 1, names: "PIPELINE_ID" },
    flags: { wait: { type: "boolean" } },
    notFound: NOT_FOUND,
  } as const;
  return runCommand(spec, argv, async (ctx) => {
    const pid = ctx.args[0]!;
    const api = ctx.api();
    let r = await api.post<Run>(`/v1/pipelines/${seg(pid)}/runs`);
    if (!boolFlag(ctx.flags, "wait")) {
      if (ctx.json) ctx.out.doc(r);
      else ctx.out.print(renderRun(r));
      return EXIT.ok;
    }
    if (!ctx.json) ctx.out.info(`run ${r.id} started; waiting for its ${r.steps.length} steps`);
    const seen = new Map(r.steps.map((s) => [s.name, s.state]));
    while (!TERMINAL.has(r.state)) {
      await new Promise((res) => setTimeout(res, 1000));
      r = await api.get<Run>(`/v1/pipelines/${seg(pid)}/runs/${seg(r.id)}`);
      for (const s of r.steps) {
        if (seen.get(s.name) !== s.state && !ctx.json) {
          ctx.out.info(`${s.name}: ${s.state}${s.reason ? ` (${s.reason})` : ""}`);
        }
        seen.set(s.name, s.state);
      }
    }
    if (ctx.json) ctx.out.doc(r);
    else ctx.out.print(renderRun(r));
    return r.state === "succeeded" ? EXIT.ok : EXIT.failed;
  });
}

function cancel(argv: string[]): Promise<number> {
  const spec = {
    name: "pipeline cancel",
    usage: usage("cancel PIPELINE_ID RUN_ID [options]", "Cancels every unfinished job of a run."),
    args: { min: 2, max: 2, names: "PIPELINE_ID RUN_ID" },
    notFound: NOT_FOUND,
  } as const;
  return runCommand(spec, argv, async (ctx) => {
    const [pid, runId] = ctx.args as [string, string];
    const r = await ctx
      .api()
      .post<Run & { cancelled: number }>(`/v1/pipelines/${seg(pid)}/runs/${seg(runId)}/cancel`);
    if (ctx.json) ctx.out.doc(r);
    else ctx.out.line(`cancelled ${r.cancelled} job(s); run ${r.id} is ${r.state}`);
    return EXIT.ok;
  });
}

export function renderRun(r: Run): string {
  const head = renderKeyValues([
    ["Run", r.id],
    ["Pipeline", `${r.pipelineId} (${r.name}, version ${r.version})`],
    ["State", r.state],
  ]);
  const table = renderTable(
    [
      { header: "STEP", value: (s: Run["steps"][number]) => s.name },
      { header: "STATE", value: (s) => s.state },
      { header: "REASON", value: (s) => s.reason },
      { header: "EXIT", value: (s) => s.exitCode, right: true },
      { header: "AFTER", value: (s) => deps(s.dependsOn) },
      { header: "JOB", value: (s) => s.jobId },
    ],
    r.steps,
  );
  return `${head}\n\n${table}`;
}
