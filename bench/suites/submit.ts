// Issue 8 §1 and §7: the submit path against a trivial route in the same run, and the runtime's memory
// under that load. autocannon (programmatic API) runs in a child process; 50 connections.
import type { CannonArgs, CannonResult } from "../child/autocannon.ts";
import { ChildProc } from "../lib/child.ts";
import { CpuWindow } from "../lib/proc.ts";
import { ANCHORS, atLeast, atMost, fig, type Noise, type SuiteResult } from "../lib/result.ts";
import { MemorySampler, startBenchServer } from "../lib/server.ts";
import { settle } from "../lib/settle.ts";
import { benchJob, createTenant } from "../lib/setup.ts";
import { median, round } from "../lib/stats.ts";

export interface SubmitOptions {
  seconds: number;
  warmupSeconds: number;
  connections: number;
  rounds: number;
}

export async function benchSubmit(o: SubmitOptions): Promise<SuiteResult> {
  const server = await startBenchServer();
  const cannon = ChildProc.start("autocannon.ts");
  try {
    const t = await createTenant(server.url, server.admin, "bench-submit", { policies: 5 });
    // A GPU type no worker has: the job is queued and its demand summarised, but placement never runs, so
    // this measures admission (auth, policies, quota, enqueue, outbox) and nothing downstream of it.
    const body = JSON.stringify(benchJob("bench-submit", "NOSUCHGPU"));
    const base = { url: server.url, connections: o.connections, seconds: o.seconds };
    const healthz: CannonArgs = { ...base, method: "GET", path: "/healthz" };
    const submit: CannonArgs = {
      ...base,
      method: "POST",
      path: "/v1/jobs",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json" },
      body,
    };
    const noise: Noise[] = [];
    const rounds: { healthz: CannonResult; submit: CannonResult }[] = [];
    const mem = new MemorySampler(server.workerdPids);
    const cpuMs = { healthz: [] as number[], submit: [] as number[] };
    // Warm-up and measured run are separate calls so the CPU window covers exactly the measured requests.
    const measure = async (args: CannonArgs, phase: string) => {
      await cannon.call<CannonResult>("run", { ...args, seconds: o.warmupSeconds });
      const w = new CpuWindow(server.workerdPids);
      const res = await cannon.call<CannonResult>("run", args);
      const n = w.finish();
      noise.push({ phase, ...n });
      return { res, cpuMsPerRequest: (n.runtimeCpuSeconds * 1000) / Math.max(1, res.requests) };
    };
    for (let r = 0; r < o.rounds; r++) {
      const h = await measure(healthz, `round ${r + 1}: GET /healthz`);
      if (r === 0) mem.start();
      const s = await measure(submit, `round ${r + 1}: POST /v1/jobs`);
      cpuMs.healthz.push(h.cpuMsPerRequest);
      cpuMs.submit.push(s.cpuMsPerRequest);
      rounds.push({ healthz: h.res, submit: s.res });
      // The outbox keeps flushing what was submitted; let it finish so the next round starts level.
      await settle(server.workerdPids, { maxMs: 60_000 });
    }
    const memory = mem.stop();
    // The round with the median throughput ratio stands for the run (its healthz and submit phases ran
    // back to back, so they saw the same machine); every round is in the details.
    const sorted = [...rounds].sort((a, b) => a.submit.rps / a.healthz.rps - b.submit.rps / b.healthz.rps);
    const mid = sorted[Math.floor(sorted.length / 2)]!;
    const ratio = mid.submit.rps / mid.healthz.rps;
    const p99ratio = mid.submit.latencyMs.p99 / mid.healthz.latencyMs.p99;
    const failures = rounds.reduce((n, r) => n + r.submit.non2xx + r.submit.errors + r.submit.timeouts, 0);
    return {
      suite: "submit",
      title: "Submit path vs a trivial route (same run)",
      measuredAt: new Date().toISOString(),
      method: [
        `autocannon ${"9.0.0"} programmatic API in a child process, ${o.connections} connections, ${o.warmupSeconds} s warm-up then ${o.seconds} s measured, per route; ${o.rounds} round(s), GET /healthz then POST /v1/jobs; the round with the median submit/healthz throughput ratio is reported`,
        "POST /v1/jobs with a member key: gateway auth (isolate cache) + body validation (the hand check, zod for anything else) + TenantQueue.submit (key check, rate limit, then group commit: the submits that arrived together share one SQLite transaction, each with its 5 CEL policies, idempotency lookup, job row; events, counters and one outbox row per transaction) — a GPU type no worker has, so placement does not run",
        `wrangler dev via db/launcher.ts launch(), --log-level warn, LOG_REQUESTS=0, ${server.database} database`,
        "memory: VmHWM / VmRSS of the workerd processes under wrangler dev, sampled every 250 ms during the submit runs",
      ],
      figures: [
        fig("submit.ratio", "Submit throughput / healthz throughput", ratio, "×", { target: atLeast(0.6) }),
        fig("submit.p99ratio", "Submit P99 / healthz P99", p99ratio, "×", { target: atMost(2.0) }),
        fig("submit.rps", "Submits/s (50 connections)", mid.submit.rps, "/s", {
          anchor: `${ANCHORS.slurmSubmit}; ${ANCHORS.awsBatch}; ${ANCHORS.phoenix}`,
        }),
        fig("submit.p50", "Submit P50", mid.submit.latencyMs.p50, "ms"),
        fig("submit.p99", "Submit P99", mid.submit.latencyMs.p99, "ms", { anchor: ANCHORS.phoenix }),
        fig("healthz.rps", "GET /healthz req/s (50 connections)", mid.healthz.rps, "/s"),
        fig("healthz.p50", "GET /healthz P50", mid.healthz.latencyMs.p50, "ms"),
        fig("healthz.p99", "GET /healthz P99", mid.healthz.latencyMs.p99, "ms"),
        fig("submit.cpuMs", "Runtime (workerd) CPU per submit", median(cpuMs.submit), "ms", {
          note: `≈ ${Math.round(1000 / median(cpuMs.submit))} submits/s per fully available core; GET /healthz: ${round(median(cpuMs.healthz), 3)} ms`,
        }),
        fig(
          "memory.peakRss",
          "Runtime peak RSS under submit load (sum over workerd processes)",
          memory.peakSumRssMiB,
          "MiB",
          {
            note: `per-process VmHWM: ${memory.processes.map((p) => `${p.hwmMiB} MiB`).join(", ")}`,
          },
        ),
      ],
      noise,
      notes: [failures ? `${failures} submit requests failed or were not 2xx` : "every submit answered 2xx"],
      details: { rounds, memory, cpuMs },
    };
  } finally {
    await cannon.stop();
    await server.stop();
  }
}
