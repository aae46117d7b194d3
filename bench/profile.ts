// CPU profile of the Worker under load, through wrangler dev's inspector (the DevTools protocol that
// `--inspector-port` exposes): `npx tsx bench/profile.ts submit|dispatch|trickle|heartbeat [seconds]`. Writes
// bench/out/profile-<what>.cpuprofile (open it in Chrome DevTools) and profile-<what>.bundle.js (the code its
// line numbers point into), and prints the functions with the most self time and the most inclusive time —
// the evidence behind the bottlenecks in bench/analysis.md.
import fs from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import type { CannonArgs } from "./child/autocannon.ts";
import type { SubmitArgs } from "./child/submitters.ts";
import { ChildProc } from "./lib/child.ts";
import { ROOT } from "./lib/machine.ts";
import { cmdline } from "./lib/proc.ts";
import { OUT_DIR } from "./lib/report.ts";
import { startBenchServer } from "./lib/server.ts";
import { benchJob, createPool, createTenant } from "./lib/setup.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

class Inspector {
  private seq = 0;
  private waiting = new Map<number, (r: unknown) => void>();
  private constructor(private ws: WebSocket) {
    ws.on("message", (d: WebSocket.RawData) => {
      const m = JSON.parse(d.toString()) as { id?: number; result?: unknown; error?: unknown };
      if (m.id !== undefined) this.waiting.get(m.id)?.(m.error ? { error: m.error } : m.result);
    });
  }
  static async connect(port: number): Promise<Inspector> {
    const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
      webSocketDebuggerUrl: string;
      title?: string;
    }[];
    // wrangler lists the user Worker (not its own proxy Worker).
    const target = list.find((t) => !/proxy/i.test(t.title ?? "")) ?? list[0];
    if (!target) throw new Error("no inspector target");
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    return new Inspector(ws);
  }
  send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve as (r: unknown) => void);
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }
  close(): void {
    this.ws.close();
  }
}

/**
 * The bundle wrangler dev is running (.wrangler/tmp/dev-…/index.js, the newest) and where each source file's
 * code starts in it: esbuild marks every module with a `// path` comment, so a profile line maps to a file.
 */
function bundleRegions(): { bundle: string | null; fileOf: (line: number) => string } {
  const base = path.join(ROOT, ".wrangler", "tmp");
  const bundles = fs
    .readdirSync(base)
    .filter((d) => d.startsWith("dev-") && fs.existsSync(path.join(base, d, "index.js")))
    .map((d) => path.join(base, d, "index.js"))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  if (!bundles[0]) return { bundle: null, fileOf: () => "index.js" };
  const starts: [number, string][] = [];
  fs.readFileSync(bundles[0], "utf8")
    .split("\n")
    .forEach((l, i) => {
      const m = /^\/\/ ((?:src|functions|db|node_modules)\/\S+)$/.exec(l);
      if (m) starts.push([i + 1, m[1]!.replace(/^node_modules\/(@[^/]+\/[^/]+|[^/]+)\/.*$/, "$1")]);
    });
  const fileOf = (line: number) => {
    let lo = 0;
    let hi = starts.length - 1;
    let found = "index.js";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]![0] <= line) {
        found = starts[mid]![1];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
  return { bundle: bundles[0], fileOf };
}

/** Self and inclusive time per function (name + location), from the sampled call tree. */
function summarize(p: Profile, fileOf: (line: number) => string, top = 25): string[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  const key = (n: ProfileNode) => {
    const f = n.callFrame;
    const file = f.url === "index.js" ? fileOf(f.lineNumber + 1) : f.url || "(native)";
    return `${f.functionName || "(anonymous)"} ${file}`;
  };
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    total += us;
    const n = byId.get(id)!;
    self.set(key(n), (self.get(key(n)) ?? 0) + us);
    // Inclusive: every distinct function on the stack gets the sample once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
  const rows = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`);
  return [
    `sampled ${(total / 1e6).toFixed(1)} s of Worker time`,
    "self time:",
    ...rows(self),
    "inclusive time:",
    ...rows(incl),
  ];
}

async function main() {
  const what = process.argv[2] ?? "submit";
  const seconds = Number(process.argv[3] ?? 10);
  const server = await startBenchServer();
  try {
    const t = await createTenant(server.url, server.admin, "profile", { policies: 5 });
    const port = Number(/--inspector-port (\d+)/.exec(cmdline(server.wranglerPid() ?? 0))?.[1]);
    const insp = await Inspector.connect(port);
    await insp.send("Profiler.enable");
    await insp.send("Profiler.setSamplingInterval", { interval: 200 });
    let load: Promise<unknown>;
    const children: ChildProc[] = [];
    if (what === "submit" || what === "healthz") {
      const cannon = ChildProc.start("autocannon.ts");
      children.push(cannon);
      const args: CannonArgs =
        what === "submit"
          ? {
              url: server.url,
              method: "POST",
              path: "/v1/jobs",
              headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json" },
              body: JSON.stringify(benchJob("profile", "NOSUCHGPU")),
              connections: 50,
              seconds,
            }
          : { url: server.url, method: "GET", path: "/healthz", connections: 50, seconds };
      await cannon.call("run", { ...args, seconds: 2 });
      await insp.send("Profiler.start");
      load = cannon.call("run", args);
    } else {
      const fleet = ChildProc.start("fleet.ts");
      children.push(fleet);
      const join = await createPool(server.url, server.admin, "sim");
      await fleet.call("start", {
        url: server.url,
        joinToken: join,
        workers: 200,
        gpus: 8,
        gpuType: "SIMH100",
        heartbeatMs: 10_000,
        connect: true,
      });
      await insp.send("Profiler.start");
      if (what === "heartbeat") load = fleet.call("storm", { seconds });
      else {
        const clients = ChildProc.start("submitters.ts");
        children.push(clients);
        const a: SubmitArgs = {
          url: server.url,
          key: t.key,
          concurrency: 64,
          seconds,
          prefix: "p",
          job: benchJob("x", "SIMH100"),
          // "trickle": 50 submits/s with idle capacity, the latency phase of the dispatch suite.
          ...(what === "trickle" ? { ratePerSecond: 50 } : {}),
        };
        load = clients.call("run", a);
      }
    }
    await load;
    const { profile } = await insp.send<{ profile: Profile }>("Profiler.stop");
    const { bundle, fileOf } = bundleRegions();
    insp.close();
    for (const c of children) await c.stop();
    fs.mkdirSync(OUT_DIR, { recursive: true });
    const file = path.join(OUT_DIR, `profile-${what}.cpuprofile`);
    fs.writeFileSync(file, JSON.stringify(profile));
    // The profile's line numbers point into this bundle, which wrangler deletes when it stops.
    if (bundle) fs.copyFileSync(bundle, file.replace(/\.cpuprofile$/, ".bundle.js"));
    console.log(`${what}: ${file}`);
    console.log(summarize(profile, fileOf).join("\n"));
  } finally {
    await server.stop();
  }
}

await main();
