// Two versions of the code on one machine, in the same minutes: `npx tsx bench/ab.ts <other checkout>`
// (e.g. `git worktree add /tmp/base <commit>` with node_modules linked in). Both servers run at once; the
// submit-vs-healthz load alternates between them round by round, so the machine's drift (on these VMs
// /healthz alone moves by ±20 % from one minute to the next) falls on both alike. Per request it reports
// throughput and the runtime CPU of each workerd process: ours (the Worker and its objects) and wrangler
// dev's proxy in front of it. Not part of `npm run bench`: it compares code, it does not measure targets.
import type { CannonArgs, CannonResult } from "./child/autocannon.ts";
import { ChildProc } from "./lib/child.ts";
import { cpuSeconds } from "./lib/proc.ts";
import { type BenchServer, proxyPidOf } from "./lib/server.ts";
import { benchJob, createTenant } from "./lib/setup.ts";
import { median } from "./lib/stats.ts";

const other = process.argv[2];
if (!other) throw new Error("usage: npx tsx bench/ab.ts <path of the other checkout> [rounds] [seconds]");
const rounds = Number(process.argv[3] ?? 6);
const seconds = Number(process.argv[4] ?? 6);

type Start = () => Promise<BenchServer>;
const starts: [string, Start][] = [
  ["other", (await import(`${other}/bench/lib/server.ts`)).startBenchServer as Start],
  ["this", (await import("./lib/server.ts")).startBenchServer as Start],
];

interface Side {
  name: string;
  server: BenchServer;
  proxy: number;
  routes: [string, CannonArgs][];
}

const sides: Side[] = [];
const cannon = ChildProc.start("autocannon.ts");
try {
  for (const [name, start] of starts) {
    const server = await start();
    const t = await createTenant(server.url, server.admin, "ab", { policies: 5 });
    const base = { url: server.url, connections: 50, seconds };
    // The other checkout's server may predate proxyPid(): this checkout's helper finds it for both.
    const proxy = proxyPidOf(server.url, server.workerdPids());
    sides.push({
      name,
      server,
      proxy,
      routes: [
        ["healthz", { ...base, method: "GET", path: "/healthz" }],
        [
          "submit",
          {
            ...base,
            method: "POST",
            path: "/v1/jobs",
            headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json" },
            body: JSON.stringify(benchJob("ab", "NOSUCHGPU")),
          },
        ],
      ],
    });
  }
  const acc = new Map<string, { rps: number[]; ours: number[]; proxy: number[] }>();
  for (let r = 0; r < rounds; r++) {
    for (const s of sides) {
      for (const [route, args] of s.routes) {
        await cannon.call<CannonResult>("run", { ...args, seconds: 2 });
        const ours = () => s.server.workerdPids().filter((p) => p !== s.proxy);
        const o0 = cpuSeconds(ours());
        const p0 = cpuSeconds([s.proxy]);
        const res = await cannon.call<CannonResult>("run", args);
        const perReq = (sec: number) => (sec * 1000) / Math.max(1, res.requests);
        const k = `${s.name} ${route}`;
        const a = acc.get(k) ?? { rps: [], ours: [], proxy: [] };
        a.rps.push(res.rps);
        a.ours.push(perReq(cpuSeconds(ours()) - o0));
        a.proxy.push(perReq(cpuSeconds([s.proxy]) - p0));
        acc.set(k, a);
        console.log(`round ${r + 1} ${k}: ${res.rps.toFixed(0)}/s`);
      }
    }
  }
  console.log("\nmedians: req/s, runtime CPU ms per request (ours | wrangler's proxy)");
  for (const [k, a] of acc) {
    console.log(
      `  ${k.padEnd(14)} ${median(a.rps).toFixed(0).padStart(6)}/s  ${median(a.ours).toFixed(3)} | ${median(a.proxy).toFixed(3)} ms`,
    );
  }
  for (const s of sides) {
    const sub = acc.get(`${s.name} submit`)!.rps;
    const hz = acc.get(`${s.name} healthz`)!.rps;
    const ratios = sub.map((x, i) => x / hz[i]!);
    console.log(
      `  ${s.name.padEnd(6)} submit/healthz per round ${ratios.map((x) => x.toFixed(2)).join(" ")}, median ${median(ratios).toFixed(2)}`,
    );
  }
} finally {
  await cannon.stop();
  for (const s of sides) await s.server.stop();
}
