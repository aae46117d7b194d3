// Setup through the public API, as an operator would: a tenant with keys, policies and a quota; a pool
// with a join token. Everything the benchmarks measure then runs against that realistic configuration.
import { REALISTIC_POLICIES } from "../policy.ts";
import { mustJson } from "./http.ts";

export interface BenchTenant {
  id: string;
  key: string;
  adminKey: string;
}

/**
 * A tenant whose submissions go through `policies` CEL policies (the first N of bench/policy.ts's realistic
 * set, none of which denies the benchmark job) and a quota, so the submit path does all its real work.
 */
export async function createTenant(
  url: string,
  admin: string,
  id: string,
  opts: { policies?: number; weight?: number } = {},
): Promise<BenchTenant> {
  await mustJson(url, "POST", "/v1/tenants", admin, { id, weight: opts.weight ?? 1 });
  const adminKey = (
    await mustJson<{ key: string }>(url, "POST", `/v1/tenants/${id}/keys`, admin, {
      name: "ops",
      role: "admin",
    })
  ).key;
  const key = (
    await mustJson<{ key: string }>(url, "POST", `/v1/tenants/${id}/keys`, admin, {
      name: "alice",
      role: "member",
    })
  ).key;
  for (const p of REALISTIC_POLICIES.slice(0, opts.policies ?? 5)) {
    await mustJson(url, "POST", "/v1/policies", adminKey, {
      name: p.name,
      expression: p.expression,
      effect: p.effect,
      ...(p.message ? { message: p.message } : {}),
      ...(p.messageExpression ? { messageExpression: p.messageExpression } : {}),
    });
  }
  await mustJson(url, "PUT", `/v1/tenants/${id}/quota`, admin, {
    gpus: { "*": { nominal: 100_000 } },
    maxConcurrentJobs: 1_000_000,
  });
  return { id, key, adminKey };
}

export async function createPool(url: string, admin: string, id: string): Promise<string> {
  await mustJson(url, "POST", "/v1/pools", admin, { id });
  return (await mustJson<{ token: string }>(url, "POST", `/v1/pools/${id}/join-tokens`, admin, {})).token;
}

/** The benchmark job: realistic fields; passes every policy of the realistic set (warnings at most). */
export function benchJob(name: string, gpuType: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    command: ["python", "train.py", "--epochs", "1"],
    gpus: 1,
    gpuType,
    priority: "normal",
    maxRuntimeSeconds: 3600,
    env: { WANDB_PROJECT: "bench" },
    labels: { team: "vision" },
    ...extra,
  };
}
