// Issue 8 §2 and §3, and the idle-capacity variant of §1: hundreds of simulated workers speaking the real
// worker protocol (bench/lib/simworker.ts) in one child process; tenant clients in another. Latency is
// what a worker sees: the time its live channel delivers the assignment minus the time the submit request
// was sent (both processes read the same clock: performance.timeOrigin + performance.now()).
import type { CannonResult } from "../child/autocannon.ts";
import type { SubmitArgs, SubmitRecord } from "../child/submitters.ts";
import { ChildProc } from "../lib/child.ts";
import { type CpuShare, CpuSplit } from "../lib/cpusplit.ts";
import { CpuWindow } from "../lib/proc.ts";
import { ANCHORS, atLeast, atMost, type Figure, fig, type Noise, type SuiteResult } from "../lib/result.ts";
import { MemorySampler, startBenchServer } from "../lib/server.ts";
import { settle } from "../lib/settle.ts";
import { benchJob, createPool, createTenant } from "../lib/setup.ts";
import type { Delivery } from "../lib/simworker.ts";
import { nowMs, round, summarize } from "../lib/stats.ts";

export interface DispatchOptions {
  workers: number;
  gpusPerWorker: number;
  /** Submissions in the throughput phase (closed loop). */
  jobs: number;
  concurrency: number;
  /** Open-loop rate of the latency phase (idle capacity). */
  latencyRate: number;
  latencySeconds: number;
  arraySize: number;
  arrays: number;
  heartbeatSeconds: number;
  stormSeconds: number;
  submitSeconds: number;
}

interface Collected {
  deliveries: Delivery[];
  finished: [string, number][];
  errors: number;
  lastError: string;
  rejected: number;
}

const GPU = "SIMH100";

export async function benchDispatch(o: DispatchOptions): Promise<SuiteResult> {
  // Heartbeats every `heartbeatSeconds` (default 10, as deployed) from every simulated worker.
  const server = await startBenchServer({ heartbeatSeconds: o.heartbeatSeconds, leaseTtlSeconds: 60 });
  const fleet = ChildProc.start("fleet.ts");
  const clients = ChildProc.start("submitters.ts");
  const cannon = ChildProc.start("autocannon.ts");
  const noise: Noise[] = [];
  const notes: string[] = [];
  const details: Record<string, unknown> = {};
  try {
    const t = await createTenant(server.url, server.admin, "bench-dispatch", { policies: 5 });
    const join = await createPool(server.url, server.admin, "sim");
    const started = await fleet.call<{ workers: number; registeredMs: number; readyMs: number }>("start", {
      url: server.url,
      joinToken: join,
      workers: o.workers,
      gpus: o.gpusPerWorker,
      gpuType: GPU,
      heartbeatMs: o.heartbeatSeconds * 1000,
      connect: true,
    });
    details.fleet = started;
    notes.push(
      `${started.workers} simulated workers × ${o.gpusPerWorker} GPUs registered in ${round(started.registeredMs / 1000)} s, all live channels open after ${round(started.readyMs / 1000)} s`,
    );
    await settle(server.workerdPids, { maxMs: 60_000 });
    const mem = new MemorySampler(server.workerdPids).start();

    // Who used the machine's two cores while jobs ran: what a jobs/s figure is bounded by.
    const groups = {
      "our workerd (the Worker and its objects)": () =>
        server.workerdPids().filter((p) => p !== server.proxyPid()),
      "wrangler dev's proxy (workerd)": () => [server.proxyPid()],
      "wrangler dev (node)": () => [server.wranglerPid() ?? -1],
      "orchestrator (embedded database, its WebSocket proxy)": () => [process.pid],
      "simulated workers (child)": () => [fleet.pid ?? -1],
      "tenant clients (child)": () => [clients.pid ?? -1],
    };
    const phase = async (name: string, args: Omit<SubmitArgs, "url" | "key" | "job">, tasksPer = 1) => {
      await fleet.call<Collected>("collect"); // drop anything left over from before
      const w = new CpuWindow(server.workerdPids);
      const split = new CpuSplit(groups);
      const sub = await clients.call<{ records: SubmitRecord[]; seconds: number; lastError: string }>("run", {
        url: server.url,
        key: t.key,
        job: benchJob("x", GPU),
        ...args,
      });
      const acked = sub.records.filter((r) => r.status >= 200 && r.status < 300);
      const expected = acked.length * tasksPer;
      // Wait until every acknowledged job (task) has been reported succeeded by its worker.
      const deadline = nowMs() + 120_000;
      let got: Collected = { deliveries: [], finished: [], errors: 0, lastError: "", rejected: 0 };
      for (;;) {
        const c = await fleet.call<Collected>("collect");
        got = {
          deliveries: got.deliveries.concat(c.deliveries),
          finished: got.finished.concat(c.finished),
          errors: c.errors,
          lastError: c.lastError,
          rejected: c.rejected,
        };
        if (got.finished.length >= expected || nowMs() > deadline) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const cpu = w.finish();
      const cpuSplit: CpuShare[] = split.finish(got.finished.length);
      noise.push({ phase: name, ...cpu });
      const sent = new Map(sub.records.map((r) => [r.name, r]));
      const latency: number[] = [];
      const byWs = got.deliveries.filter((d) => d.via === "ws").length;
      for (const d of got.deliveries) {
        const r = sent.get(d.name);
        if (r) latency.push(d.at - r.sentAt);
      }
      const first = Math.min(...sub.records.map((r) => r.sentAt));
      const lastDone = Math.max(...got.finished.map(([, at]) => at));
      const submitLat = acked.map((r) => r.ackAt - r.sentAt);
      const res = {
        submitted: sub.records.length,
        acked: acked.length,
        tasks: expected,
        delivered: got.deliveries.length,
        deliveredViaWs: byWs,
        finished: got.finished.length,
        submitSeconds: round(sub.seconds, 2),
        submitsPerSecond: round(acked.length / sub.seconds),
        tasksSubmittedPerSecond: round(expected / sub.seconds),
        /** First submit sent → last success acknowledged. */
        endToEndSeconds: round((lastDone - first) / 1000, 2),
        jobsPerSecond: round(got.finished.length / ((lastDone - first) / 1000)),
        deliveryLatencyMs: summarize(latency),
        submitLatencyMs: summarize(submitLat),
        workerErrors: got.errors,
        lastWorkerError: got.lastError,
        rejectedUpdates: got.rejected,
        lastSubmitError: sub.lastError,
        runtimeCpuMsPerJob: round((cpu.runtimeCpuSeconds * 1000) / Math.max(1, got.finished.length), 2),
        cpuSplit,
      };
      details[name] = res;
      if (res.finished < expected)
        notes.push(
          `${name}: only ${res.finished} of ${expected} jobs finished within 120 s of the last submit`,
        );
      await settle(server.workerdPids, { maxMs: 60_000 });
      return res;
    };

    // 1. Latency with idle capacity: an open-loop trickle, far below saturation; every GPU is free.
    const lat = await phase("latency (idle capacity)", {
      concurrency: 50,
      ratePerSecond: o.latencyRate,
      seconds: o.latencySeconds,
      prefix: "lat",
    });
    // 2. Throughput: many clients submitting back to back; workers finish each job at once.
    const thr = await phase("throughput (single submits)", {
      concurrency: o.concurrency,
      total: o.jobs,
      prefix: "thr",
    });
    // 2b. Twice the clients: 64 closed-loop clients leave the machine short of its cores (each submit waits
    // for its disk commit), so this shows what more load gets out of the same system.
    const thr2 = await phase(`throughput (single submits, ${2 * o.concurrency} clients)`, {
      concurrency: 2 * o.concurrency,
      total: o.jobs,
      prefix: "thr2",
    });
    // 3. The same as job arrays (one request = arraySize tasks).
    const arr = await phase(
      `throughput (arrays of ${o.arraySize})`,
      { concurrency: Math.min(8, o.arrays), total: o.arrays, prefix: "arr", arraySize: o.arraySize },
      o.arraySize,
    );

    // 4. §1's second variant: submit throughput while the fleet has idle capacity and runs what arrives.
    const w4 = new CpuWindow(server.workerdPids);
    const idleSubmit = await cannon.call<CannonResult>("run", {
      url: server.url,
      method: "POST",
      path: "/v1/jobs",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json" },
      body: JSON.stringify(benchJob("cannon", GPU)),
      connections: 50,
      seconds: o.submitSeconds,
      warmupSeconds: 2,
    });
    noise.push({ phase: "submit with idle capacity (autocannon)", ...w4.finish() });
    details["submit with idle capacity"] = idleSubmit;
    await settle(server.workerdPids, { maxMs: 90_000 });
    await fleet.call("collect");
    const memory = mem.stop();
    details.memory = memory;

    // 5. Heartbeat ingest: every worker heartbeats back to back with an empty running list, first over
    // HTTP (POST /heartbeat), then as frames on its live channel (the agent's default path).
    type Storm = {
      workers: number;
      heartbeats: number;
      perSecond: number;
      failed: number;
      latencyMs: { p50: number; p99: number };
    };
    const w5 = new CpuWindow(server.workerdPids);
    const storm = await fleet.call<Storm>("storm", { seconds: o.stormSeconds, via: "http" });
    const stormCpu = w5.finish();
    noise.push({ phase: "heartbeat storm (HTTP)", ...stormCpu });
    details.heartbeats = storm;
    await settle(server.workerdPids, { maxMs: 30_000 });
    // The trivial route with as many connections, back to back: the most any HTTP route can do here.
    const wH = new CpuWindow(server.workerdPids);
    const healthz = await cannon.call<CannonResult>("run", {
      url: server.url,
      method: "GET",
      path: "/healthz",
      connections: o.workers,
      seconds: o.stormSeconds,
    });
    noise.push({ phase: "GET /healthz, as many connections", ...wH.finish() });
    details.healthzBaseline = healthz;
    await settle(server.workerdPids, { maxMs: 30_000 });
    const w6 = new CpuWindow(server.workerdPids);
    const chStorm = await fleet.call<Storm>("storm", { seconds: o.stormSeconds, via: "channel" });
    const chStormCpu = w6.finish();
    noise.push({ phase: "heartbeat storm (live channel)", ...chStormCpu });
    details.channelHeartbeats = chStorm;

    const figures: Figure[] = [
      fig("dispatch.jobsPerSecond", "Jobs/s, submit → succeeded (single submits)", thr.jobsPerSecond, "/s", {
        target: atLeast(1000),
        anchor: `${ANCHORS.slurmJobs}; ${ANCHORS.kueue}`,
        note: `${thr.finished} jobs, ${o.concurrency} concurrent clients, ${started.workers} workers`,
      }),
      fig(
        "dispatch.jobsPerSecond2x",
        `Jobs/s, single submits, ${2 * o.concurrency} clients (twice the load)`,
        thr2.jobsPerSecond,
        "/s",
        {
          note: `${thr2.finished} jobs; submit → delivered P50 ${thr2.deliveryLatencyMs.p50} ms, P99 ${thr2.deliveryLatencyMs.p99} ms; ${thr2.runtimeCpuMsPerJob} ms runtime CPU per job`,
        },
      ),
      fig(
        "dispatch.arrayJobsPerSecond",
        `Jobs/s, submit → succeeded (arrays of ${o.arraySize})`,
        arr.jobsPerSecond,
        "/s",
        {
          note: `${arr.finished} tasks in ${arr.acked} array submissions; reported separately from single submits`,
        },
      ),
      fig(
        "dispatch.p50",
        "Submit → assignment delivered P50 (idle capacity)",
        lat.deliveryLatencyMs.p50,
        "ms",
        {
          target: atMost(50),
          note: `${lat.delivered} jobs at ${o.latencyRate}/s open loop; ${lat.deliveredViaWs} via the live channel`,
        },
      ),
      fig(
        "dispatch.p99",
        "Submit → assignment delivered P99 (idle capacity)",
        lat.deliveryLatencyMs.p99,
        "ms",
        {
          target: atMost(250),
        },
      ),
      fig(
        "dispatch.loadedP50",
        "Submit → delivered P50 under the throughput run",
        thr.deliveryLatencyMs.p50,
        "ms",
      ),
      fig(
        "dispatch.loadedP99",
        "Submit → delivered P99 under the throughput run",
        thr.deliveryLatencyMs.p99,
        "ms",
      ),
      fig(
        "submitIdle.rps",
        "Submits/s with idle capacity (50 connections, jobs placed and run)",
        idleSubmit.rps,
        "/s",
        {
          note: `P50 ${idleSubmit.latencyMs.p50} ms, P99 ${idleSubmit.latencyMs.p99} ms, non-2xx ${idleSubmit.non2xx}`,
        },
      ),
      fig(
        "heartbeat.perSecond",
        "Heartbeats/s over HTTP (POST /heartbeat, empty running list)",
        storm.perSecond,
        "/s",
        {
          target: atLeast(2000),
          note: `${storm.workers} workers back to back; ${storm.failed} failed; the agent's fallback path`,
        },
      ),
      fig(
        "heartbeat.healthzRps",
        `GET /healthz req/s in the same run (${o.workers} connections back to back)`,
        healthz.rps,
        "/s",
        {
          note: `the ceiling of any HTTP route here; HTTP heartbeats reach ${round(storm.perSecond / Math.max(1, healthz.rps), 2)} of it`,
        },
      ),
      fig(
        "heartbeat.channelPerSecond",
        "Heartbeats/s over the live channel (the agent's default path)",
        chStorm.perSecond,
        "/s",
        {
          target: atLeast(2000),
          note: `${chStorm.workers} workers, one frame in flight each; ${chStorm.failed} failed; P50 ${chStorm.latencyMs.p50} ms, P99 ${chStorm.latencyMs.p99} ms`,
        },
      ),
      fig(
        "dispatch.cpuMsPerJob",
        "Runtime (workerd) CPU per job, submit → succeeded",
        thr.runtimeCpuMsPerJob,
        "ms",
        {
          note: `≈ ${Math.round(1000 / thr.runtimeCpuMsPerJob)} jobs/s per fully available core; arrays: ${arr.runtimeCpuMsPerJob} ms per task`,
        },
      ),
      fig(
        "heartbeat.cpuMs",
        "Runtime (workerd) CPU per heartbeat",
        (stormCpu.runtimeCpuSeconds * 1000) / Math.max(1, storm.heartbeats),
        "ms",
        {
          note: `≈ ${Math.round(storm.heartbeats / Math.max(0.01, stormCpu.runtimeCpuSeconds))} heartbeats/s per fully available core`,
        },
      ),
      fig(
        "heartbeat.channelCpuMs",
        "Runtime (workerd) CPU per heartbeat over the live channel",
        (chStormCpu.runtimeCpuSeconds * 1000) / Math.max(1, chStorm.heartbeats),
        "ms",
      ),
      fig("heartbeat.p50", "Heartbeat P50 (HTTP)", storm.latencyMs.p50, "ms"),
      fig("heartbeat.p99", "Heartbeat P99 (HTTP)", storm.latencyMs.p99, "ms"),
      fig(
        "memory.dispatchPeakRss",
        "Runtime peak RSS during dispatch (sum over workerd processes)",
        memory.peakSumRssMiB,
        "MiB",
      ),
    ];
    return {
      suite: "dispatch",
      title: "End-to-end dispatch with simulated workers; heartbeat ingest",
      measuredAt: new Date().toISOString(),
      method: [
        `${started.workers} simulated workers × ${o.gpusPerWorker} GPUs (type ${GPU}) in one child process: register with a join token, live channel WebSocket, heartbeat every ${o.heartbeatSeconds} s as frames on the live channel (as the agent does; HTTP when it is down), report running + succeeded in heartbeat \`updates\` batches as soon as an assignment arrives (one heartbeat in flight per worker; what piles up meanwhile goes in the next)`,
        `tenant clients in another child process (node:http keep-alive); job names are unique per submission so deliveries are matched to the submit's send time`,
        `latency phase: ${o.latencyRate} submits/s open loop for ${o.latencySeconds} s; throughput phase: ${o.jobs} submits, ${o.concurrency} clients back to back (the target's figure), then ${o.jobs} more with ${2 * o.concurrency} clients; arrays: ${o.arrays} submissions of ${o.arraySize} tasks`,
        `jobs/s = jobs reported succeeded / (last success acknowledged − first submit sent)`,
        `heartbeats: all ${started.workers} workers heartbeat back to back for ${o.stormSeconds} s (client-side latency), over HTTP, then over the live channel`,
        `wrangler dev via db/launcher.ts launch(), --log-level warn, LOG_REQUESTS=0, ${server.database} database, 16 fleet shards`,
      ],
      figures,
      noise,
      notes,
      tables: [
        {
          title: `Where the machine's CPU went while jobs ran (single submits: ${thr.finished} jobs in ${thr.endToEndSeconds} s with ${o.concurrency} clients, ${thr2.finished} in ${thr2.endToEndSeconds} s with ${2 * o.concurrency}):`,
          header: [
            "Process",
            `${o.concurrency} clients: cores`,
            "CPU ms per job",
            `${2 * o.concurrency} clients: cores`,
            "CPU ms per job",
          ],
          rows: thr.cpuSplit.map((c, i) => [
            c.group,
            c.cores,
            c.msPerOp,
            thr2.cpuSplit[i]?.cores ?? "",
            thr2.cpuSplit[i]?.msPerOp ?? "",
          ]),
        },
      ],
      details,
    };
  } finally {
    await fleet.call("stop").catch(() => {});
    await Promise.all([fleet.stop(), clients.stop(), cannon.stop()]);
    await server.stop();
  }
}
