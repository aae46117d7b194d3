// The environment a job runs with: the agent's own (PATH, HOME, locale, driver settings) + the job's env
// + the variables Gantry owns. Gantry's variables are applied last so a job cannot claim GPUs it was not
// given, and the agent's GANTRY_* settings (notably GANTRY_JOIN_TOKEN) never leak into tenant code.
import type { Assignment } from "./protocol.ts";

/** Variables the agent sets for every job; a job's own env cannot override them. */
export const RESERVED_PREFIX = "GANTRY_";

/**
 * The part of the agent's environment jobs inherit, as a plain object. The agent computes it once:
 * reading process.env (a native proxy) is slow enough to show when hundreds of jobs start per second.
 */
export function inheritableEnv(base: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) {
    if (v !== undefined && !k.startsWith(RESERVED_PREFIX)) env[k] = v;
  }
  return env;
}

export function buildJobEnv(base: NodeJS.ProcessEnv, a: Assignment): Record<string, string> {
  const env = inheritableEnv(base);
  for (const [k, v] of Object.entries(a.spec.env)) {
    if (!k.startsWith(RESERVED_PREFIX) && k !== "CUDA_VISIBLE_DEVICES") env[k] = v;
  }
  env.CUDA_VISIBLE_DEVICES = a.gpuIndices.join(",");
  env.GANTRY_JOB_ID = a.jobId;
  env.GANTRY_ATTEMPT = String(a.spec.attempt);
  env.GANTRY_LEASE = String(a.lease);
  if (a.spec.arrayIndex !== undefined) env.GANTRY_ARRAY_INDEX = String(a.spec.arrayIndex);
  return env;
}
