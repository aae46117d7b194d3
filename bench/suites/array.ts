// Issue 9's throughput figure: tasks/s for POST /v1/jobs with "array": {"size": N} beside single
// submissions, in the same run against the same tenant (5 policies, a GPU type no worker has).
import type { SubmitArgs, SubmitRecord } from "../child/submitters.ts";
import { ChildProc } from "../lib/child.ts";
import { CpuWindow } from "../lib/proc.ts";
import { ANCHORS, type Figure, fig, type Noise, type SuiteResult } from "../lib/result.ts";
import { startBenchServer } from "../lib/server.ts";
import { settle } from "../lib/settle.ts";
import { benchJob, createTenant } from "../lib/setup.ts";
import { round, summarize } from "../lib/stats.ts";

export interface ArrayOptions {
  sizes: number[];
  /** Array submissions per size. */
  calls: number;
  /** Concurrent clients for array submissions. */
  concurrency: number;
  singleSeconds: number;
}

export async function benchArray(o: ArrayOptions): Promise<SuiteResult> {
  const server = await startBenchServer();
  const clients = ChildProc.start("submitters.ts");
  const noise: Noise[] = [];
  const details: Record<string, unknown> = {};
  const figures: Figure[] = [];
  try {
    const t = await createTenant(server.url, server.admin, "bench-array", { policies: 5 });
    const run = async (label: string, args: Omit<SubmitArgs, "url" | "key" | "job">, tasksPer: number) => {
      const w = new CpuWindow(server.workerdPids);
      const r = await clients.call<{ records: SubmitRecord[]; seconds: number; lastError: string }>("run", {
        url: server.url,
        key: t.key,
        job: benchJob("x", "NOSUCHGPU"),
        ...args,
      });
      const cpu = w.finish();
      noise.push({ phase: label, ...cpu });
      const ok = r.records.filter((x) => x.status >= 200 && x.status < 300);
      const res = {
        requests: r.records.length,
        ok: ok.length,
        seconds: round(r.seconds, 2),
        tasksPerSecond: round((ok.length * tasksPer) / r.seconds),
        requestLatencyMs: summarize(ok.map((x) => x.ackAt - x.sentAt)),
        lastError: r.lastError,
        runtimeCpuMsPerTask: round((cpu.runtimeCpuSeconds * 1000) / Math.max(1, ok.length * tasksPer), 3),
      };
      details[label] = res;
      // Each array leaves thousands of outbox rows for the database: flush them before the next phase.
      await settle(server.workerdPids, { maxMs: 120_000 });
      return res;
    };
    const single = await run(
      "single submits",
      { concurrency: 50, seconds: o.singleSeconds, prefix: "one", ratePerSecond: undefined },
      1,
    );
    figures.push(
      fig("array.single", "Single submissions: tasks/s (50 clients)", single.tasksPerSecond, "/s", {
        anchor: ANCHORS.slurmSubmit,
        note: `P50 ${single.requestLatencyMs.p50} ms, P99 ${single.requestLatencyMs.p99} ms; runtime CPU ${single.runtimeCpuMsPerTask} ms per task`,
      }),
    );
    for (const size of o.sizes) {
      const r = await run(
        `arrays of ${size}`,
        { concurrency: o.concurrency, total: o.calls, prefix: `arr${size}`, arraySize: size },
        size,
      );
      figures.push(
        fig(`array.${size}`, `Arrays of ${size.toLocaleString("en")}: tasks/s`, r.tasksPerSecond, "/s", {
          note: `${r.ok} submissions, ${o.concurrency} at a time; one request P50 ${r.requestLatencyMs.p50} ms, max ${r.requestLatencyMs.max} ms; runtime CPU ${r.runtimeCpuMsPerTask} ms per task`,
        }),
      );
    }
    return {
      suite: "array",
      title: "Array submission throughput (tasks/s) beside single submissions",
      measuredAt: new Date().toISOString(),
      method: [
        "tenant clients in a child process (node:http keep-alive); single submissions: 50 clients back to back; arrays: the given number of submissions, a few at a time",
        "tasks/s = tasks acknowledged (2xx) / wall time of the phase; one array request inserts every task, its event and outbox rows in one SQLite transaction",
        `wrangler dev via db/launcher.ts launch(), --log-level warn, LOG_REQUESTS=0, ${server.database} database; the outbox is allowed to drain between phases`,
      ],
      figures,
      noise,
      notes: [],
      details,
    };
  } finally {
    await clients.stop();
    await server.stop();
  }
}
