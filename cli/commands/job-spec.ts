// The job a command line describes: `[flags] -- CMD ARGS...` into the body of POST /v1/jobs. Shared by
// `submit` and `policies evaluate`, so a dry run judges exactly what a submission would send.
import path from "node:path";
import { listFlag, type ParsedFlags, stringFlag } from "../lib/args.ts";
import { parseDuration } from "../lib/duration.ts";
import { UsageError } from "../lib/errors.ts";

export const JOB_FLAGS = {
  name: { type: "string" },
  gpus: { type: "string" },
  "gpu-type": { type: "string" },
  priority: { type: "string" },
  "max-runtime": { type: "string" },
  "max-retries": { type: "string" },
  label: { type: "string", multiple: true },
  env: { type: "string", multiple: true },
  user: { type: "string" },
  array: { type: "string" },
  after: { type: "string", multiple: true },
} as const;

export const JOB_FLAGS_HELP = `Job options:
  --name NAME           job name (default: the command's basename)
  --gpus N              GPUs on one worker, 1-64 (default 1)
  --gpu-type TYPE       GPU type such as H100 (default: any type)
  --priority P          high, normal (default) or low
  --max-runtime D       kill the job after this long: 90s, 10m, 2h, 1d (plain numbers are seconds)
  --max-retries N       re-run a job that fails on its own up to N times (default 0)
  --label KEY=VALUE     job label; repeat for more
  --env KEY=VALUE       environment variable for the job; repeat for more ("--env KEY" copies
                        KEY from your environment)
  --user NAME           run as this user (default: the key's name)
  --array N             submit N tasks at once; each gets GANTRY_ARRAY_INDEX
  --after JOB[:COND]    start only after JOB succeeded (COND "succeeded", the default) or ended
                        in any way ("finished"); repeat for more`;

export interface JobSubmission {
  name: string;
  command: string[];
  gpus: number;
  gpuType?: string;
  priority?: "high" | "normal" | "low";
  maxRuntimeSeconds?: number;
  maxRetries?: number;
  env?: Record<string, string>;
  labels?: Record<string, string>;
  user?: string;
  array?: { size: number };
  dependsOn?: { job: string; condition: "succeeded" | "finished" }[];
}

/** Splits argv at the first "--": flags before it, the job's command after it. */
export function splitCommand(argv: string[]): { flags: string[]; command: string[] } {
  const i = argv.indexOf("--");
  return i < 0 ? { flags: argv, command: [] } : { flags: argv.slice(0, i), command: argv.slice(i + 1) };
}

export function positiveInt(raw: string, flag: string, min = 1): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${flag} expects a whole number >= ${min}, got "${raw}"`);
  }
  return n;
}

export function parsePriority(raw: string): "high" | "normal" | "low" {
  if (raw === "high" || raw === "normal" || raw === "low") return raw;
  throw new UsageError(`--priority must be high, normal or low, got "${raw}"`);
}

/** `--env K=V` pairs; a bare `--env K` takes K's value from the caller's environment. */
export function parseEnvPairs(pairs: string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq === 0) throw new UsageError(`--env expects KEY=VALUE or KEY, got "${pair}"`);
    if (eq > 0) {
      out[pair.slice(0, eq)] = pair.slice(eq + 1);
      continue;
    }
    const v = env[pair];
    if (v === undefined) throw new UsageError(`--env ${pair}: ${pair} is not set in your environment`);
    out[pair] = v;
  }
  return out;
}

/** `--label k=v` pairs (the value may contain "="). */
export function parseLabels(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--label expects KEY=VALUE, got "${pair}"`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export function parseAfter(raw: string): { job: string; condition: "succeeded" | "finished" } {
  const i = raw.lastIndexOf(":");
  const job = i < 0 ? raw : raw.slice(0, i);
  const cond = i < 0 ? "succeeded" : raw.slice(i + 1);
  if (!job) throw new UsageError(`--after expects JOB[:succeeded|finished], got "${raw}"`);
  if (cond !== "succeeded" && cond !== "finished") {
    throw new UsageError(`--after condition must be "succeeded" or "finished", got "${cond}"`);
  }
  return { job, condition: cond };
}

/** The submission for `flags` and `command`; usage errors for anything malformed. */
export function buildSubmission(
  flags: ParsedFlags,
  command: string[],
  env: NodeJS.ProcessEnv = process.env,
): JobSubmission {
  if (command.length === 0) {
    throw new UsageError(
      "missing the job's command: put it after --, e.g. gantry submit --gpus 1 -- python train.py",
    );
  }
  const body: JobSubmission = {
    name: stringFlag(flags, "name") ?? (path.basename(command[0]!) || command[0]!),
    command,
    gpus: positiveInt(stringFlag(flags, "gpus") ?? "1", "gpus"),
  };
  const gpuType = stringFlag(flags, "gpu-type");
  if (gpuType) body.gpuType = gpuType;
  const priority = stringFlag(flags, "priority");
  if (priority) body.priority = parsePriority(priority);
  const maxRuntime = stringFlag(flags, "max-runtime");
  if (maxRuntime !== undefined) {
    const s = parseDuration(maxRuntime);
    if (s === null || s < 1) {
      throw new UsageError(`--max-runtime expects a duration like 90s, 10m or 2h, got "${maxRuntime}"`);
    }
    body.maxRuntimeSeconds = Math.ceil(s);
  }
  const retries = stringFlag(flags, "max-retries");
  if (retries !== undefined) body.maxRetries = positiveInt(retries, "max-retries", 0);
  const labels = parseLabels(listFlag(flags, "label"));
  if (Object.keys(labels).length) body.labels = labels;
  const jobEnv = parseEnvPairs(listFlag(flags, "env"), env);
  if (Object.keys(jobEnv).length) body.env = jobEnv;
  const user = stringFlag(flags, "user");
  if (user) body.user = user;
  const array = stringFlag(flags, "array");
  if (array !== undefined) body.array = { size: positiveInt(array, "array") };
  const after = listFlag(flags, "after").map(parseAfter);
  if (after.length) body.dependsOn = after;
  return body;
}
