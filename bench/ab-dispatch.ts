// bench/ab.ts for end-to-end dispatch: `npx tsx bench/ab-dispatch.ts <other checkout> [rounds] [jobs]`.
// Both versions run at once, each with its own 300 simulated workers (live channels, reports in heartbeat
// batches, as in the dispatch suite); rounds of single submits from 64 clients alternate between them, so
// the machine's drift falls on both alike. Per round: jobs/s from first submit to last success, and the
// runtime CPU per job of our workerd and of wrangler dev's proxy. Compares code; measures no target.
// With `heartbeats` as the fourth argument, each round is instead an 8 s storm of HTTP heartbeats from the
// 300 workers (empty running lists, as in the dispatch suite): heartbeats/s and CPU per heartbeat.
import type { SubmitArgs, SubmitRecord } from "./child/submitters.ts";
import { ChildProc } from "./lib/child.ts";
import { cpuSeconds } from "./lib/proc.ts";
import { type BenchServer, proxyPidOf } from "./lib/server.ts";
import { settle } from "./lib/settle.ts";
import { benchJob, createPool, createTenant } from "./lib/setup.ts";
import { median, nowMs } from "./lib/stats.ts";

const other = process.argv[2];
if (!other)
  throw new Error("usage: npx tsx bench/ab-dispatch.ts <other checkout> [rounds] [jobs | heartbeats]");
const rounds = Number(process.argv[3] ?? 5);
const storms = process.argv[4] === "heartbeats";
const jobs = storms ? 0 : Number(process.argv[4] ?? 3000);
const unit = storms ? "heartbeat" : "job";

type Start = (o: { heartbeatSeconds: number; leaseTtlSeconds: number }) => Promise<BenchServer>;
const starts: [string, Start][] = [
  ["other", (await import(`${other}/bench/lib/server.ts`)).startBenchServer as Start],
  ["this", (await import("./lib/server.ts")).startBenchServer as Start],
];

interface Side {
  name: string;
  server: BenchServer;
  key: string;
  fleet: ChildProc;
  clients: ChildProc;
  proxy: number;
  jobsPerSecond: number[];
  ours: number[];
  proxyMs: number[];
}

const sides: Side[] = [];
try {
  for (const [name, start] of starts) {
    const server = await start({ heartbeatSeconds: 10, leaseTtlSeconds: 60 });
    const fleet = ChildProc.start("fleet.ts");
    const clients = ChildProc.start("submitters.ts");
    const side: Side = {
      name,
      server,
      key: "",
      fleet,
      clients,
      proxy: -1,
      jobsPerSecond: [],
      ours: [],
      proxyMs: [],
    };
    sides.push(side);
    side.key = (await createTenant(server.url, server.admin, "ab", { policies: 5 })).key;
    const join = await createPool(server.url, server.admin, "sim");
    await fleet.call("start", {
      url: server.url,
      joinToken: join,
      workers: 300,
      gpus: 8,
      gpuType: "SIMH100",
      heartbeatMs: 10_000,
      connect: true,
    });
    side.proxy = proxyPidOf(server.url, server.workerdPids());
  }
  for (const s of sides) await (storms ? runStorm(s, 2) : runRound(s, 500)); // warm both
  for (let r = 0; r < rounds; r++) {
    for (const s of sides) {
      const got = storms ? await runStorm(s, 8) : await runRound(s, jobs);
      console.log(
        `round ${r + 1} ${s.name}: ${got.jobsPerSecond.toFixed(0)} ${unit}s/s, ours ${got.ours.toFixed(3)} ms, proxy ${got.proxy.toFixed(3)} ms per ${unit}`,
      );
      s.jobsPerSecond.push(got.jobsPerSecond);
      s.ours.push(got.ours);
      s.proxyMs.push(got.proxy);
    }
  }
  console.log(`\nmedians: ${unit}s/s, runtime CPU ms per ${unit} (ours | wrangler's proxy)`);
  for (const s of sides)
    console.log(
      `  ${s.name.padEnd(6)} ${median(s.jobsPerSecond).toFixed(0).padStart(5)}/s  ${median(s.ours).toFixed(3)} | ${median(s.proxyMs).toFixed(3)} ms`,
    );
  // Round by round, this checkout against the other run just before it: the drift mostly cancels.
  const [a, b] = sides as [Side, Side];
  const paired = (x: number[], y: number[]) => median(y.map((v, i) => v / x[i]!)).toFixed(2);
  console.log(
    `  this/other per round, median: ${unit}s/s ${paired(a.jobsPerSecond, b.jobsPerSecond)}, our CPU per ${unit} ${paired(a.ours, b.ours)}`,
  );
} finally {
  for (const s of sides) {
    await s.fleet.call("stop").catch(() => {});
    await Promise.all([s.fleet.stop(), s.clients.stop()]);
    await s.server.stop();
  }
}

async function runRound(s: Side, total: number) {
  await settle(s.server.workerdPids, { maxMs: 30_000 });
  await s.fleet.call("collect"); // drop anything left over
  const ours = () => s.server.workerdPids().filter((p) => p !== s.proxy);
  const o0 = cpuSeconds(ours());
  const p0 = cpuSeconds([s.proxy]);
  const args: SubmitArgs = {
    url: s.server.url,
    key: s.key,
    concurrency: 64,
    total,
    prefix: `r${nowMs().toFixed(0)}`,
    job: benchJob("x", "SIMH100"),
  };
  const sub = await s.clients.call<{ records: SubmitRecord[] }>("run", args);
  const expected = sub.records.filter((r) => r.status >= 200 && r.status < 300).length;
  let finished: [string, number][] = [];
  const deadline = nowMs() + 120_000;
  while (finished.length < expected && nowMs() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    finished = finished.concat((await s.fleet.call<{ finished: [string, number][] }>("collect")).finished);
  }
  if (finished.length < expected)
    throw new Error(`${s.name}: ${finished.length} of ${expected} jobs finished`);
  const first = Math.min(...sub.records.map((r) => r.sentAt));
  const last = Math.max(...finished.map(([, at]) => at));
  const per = (sec: number) => (sec * 1000) / finished.length;
  return {
    jobsPerSecond: finished.length / ((last - first) / 1000),
    ours: per(cpuSeconds(ours()) - o0),
    proxy: per(cpuSeconds([s.proxy]) - p0),
  };
}

/** An HTTP heartbeat storm from every simulated worker; "jobsPerSecond" is heartbeats/s here. */
async function runStorm(s: Side, seconds: number) {
  await settle(s.server.workerdPids, { maxMs: 30_000 });
  const ours = () => s.server.workerdPids().filter((p) => p !== s.proxy);
  const o0 = cpuSeconds(ours());
  const p0 = cpuSeconds([s.proxy]);
  const r = await s.fleet.call<{ heartbeats: number; perSecond: number }>("storm", { seconds, via: "http" });
  const per = (sec: number) => (sec * 1000) / Math.max(1, r.heartbeats);
  return {
    jobsPerSecond: r.perSecond,
    ours: per(cpuSeconds(ours()) - o0),
    proxy: per(cpuSeconds([s.proxy]) - p0),
  };
}
