// The control plane under test: a real `wrangler dev` started through the same launcher as `npm start`
// (db/launcher.ts), with wrangler's own request log off (`--log-level warn`) and the Worker's JSON access
// log off (LOG_REQUESTS=0): both cost throughput and neither is what a deployment pays per request.
// Embedded database by default; with DATABASE_URL, a fresh database on that server (dropped afterwards).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, type Launched, launch } from "../../db/launcher.ts";
import { createFreshDatabase, type LocalDatabase } from "../../db/local/postgres.ts";
import { cmdline, comm, descendants, type MemStatus, memStatus } from "./proc.ts";

export interface BenchServer {
  url: string;
  admin: string;
  dataDir: string;
  databaseUrl: string;
  database: "embedded" | "DATABASE_URL";
  launched: Launched;
  /** The `node wrangler.js dev` process (leader of its own process group). */
  wranglerPid(): number | null;
  /** The workerd processes wrangler spawned (the runtime whose memory we report). */
  workerdPids(): number[];
  /** wrangler dev's proxy: the workerd listening on the public port, in front of ours (-1 if not found). */
  proxyPid(): number;
  stop(): Promise<void>;
}

export interface BenchServerOptions {
  vars?: Record<string, string>;
  heartbeatSeconds?: number;
  leaseTtlSeconds?: number;
}

export async function startBenchServer(opts: BenchServerOptions = {}): Promise<BenchServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "gantry-bench-"));
  const fresh: LocalDatabase | null = process.env.DATABASE_URL
    ? await createFreshDatabase(process.env.DATABASE_URL, "gantry_bench")
    : null;
  const launched = await launch({
    port: await freePort(),
    dataDir,
    databaseUrl: fresh?.url,
    heartbeatSeconds: opts.heartbeatSeconds ?? 10,
    leaseTtlSeconds: opts.leaseTtlSeconds ?? 30,
    cronSeconds: 60,
    vars: {
      LOG_REQUESTS: "0",
      ...(process.env.BENCH_VARS ? JSON.parse(process.env.BENCH_VARS) : {}),
      ...opts.vars,
    },
    logLevel: "warn",
    quiet: !process.env.GANTRY_BENCH_VERBOSE,
  });
  let wrangler: number | null = null;
  const wranglerPid = () => {
    if (wrangler && cmdline(wrangler).includes(dataDir)) return wrangler;
    wrangler =
      descendants(process.pid).find((p) => {
        const c = cmdline(p);
        return c.includes("wrangler.js") && c.includes(dataDir);
      }) ?? null;
    return wrangler;
  };
  const workerdPids = () => {
    const w = wranglerPid();
    return w ? descendants(w).filter((p) => comm(p) === "workerd") : [];
  };
  return {
    url: launched.url,
    admin: launched.adminToken,
    dataDir,
    databaseUrl: launched.database.url,
    database: fresh ? "DATABASE_URL" : "embedded",
    launched,
    wranglerPid,
    workerdPids,
    proxyPid: () => proxyPidOf(launched.url, workerdPids()),
    stop: async () => {
      await launched.stop();
      await fresh?.stop().catch(() => {});
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** wrangler dev's proxy among a server's workerd processes: the one listening on the public port. */
export function proxyPidOf(url: string, workerd: number[]): number {
  const port = new URL(url).port;
  return workerd.find((p) => cmdline(p).includes(`entry=127.0.0.1:${port}`)) ?? -1;
}

export interface MemoryPeak {
  /** Per workerd process: its own peak RSS (VmHWM) at the end of the window, MiB. */
  processes: { pid: number; hwmMiB: number; lastRssMiB: number }[];
  /** Highest sum of VmRSS over all workerd processes seen by the sampler, MiB. */
  peakSumRssMiB: number;
  /** Sum of the processes' VmHWM (an upper bound: the peaks need not coincide), MiB. */
  sumHwmMiB: number;
  samples: number;
}

/** Samples the runtime's memory every `everyMs` while load runs. */
export class MemorySampler {
  private timer: NodeJS.Timeout | null = null;
  private peakSum = 0;
  private last = new Map<number, MemStatus>();
  private samples = 0;

  constructor(private pids: () => number[]) {}

  start(everyMs = 250): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    return this;
  }

  private sample(): void {
    let sum = 0;
    for (const pid of this.pids()) {
      const m = memStatus(pid);
      if (!m) continue;
      this.last.set(pid, m);
      sum += m.rssKiB;
    }
    this.peakSum = Math.max(this.peakSum, sum);
    this.samples++;
  }

  stop(): MemoryPeak {
    if (this.timer) clearInterval(this.timer);
    this.sample();
    const mib = (k: number) => Math.round((k / 1024) * 10) / 10;
    const processes = [...this.last.values()].map((m) => ({
      pid: m.pid,
      hwmMiB: mib(memStatus(m.pid)?.hwmKiB ?? m.hwmKiB),
      lastRssMiB: mib(m.rssKiB),
    }));
    return {
      processes,
      peakSumRssMiB: mib(this.peakSum),
      sumHwmMiB: Math.round(processes.reduce((a, p) => a + p.hwmMiB, 0) * 10) / 10,
      samples: this.samples,
    };
  }
}
