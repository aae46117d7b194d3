// Linux /proc readers: process trees, memory (VmHWM/VmRSS) and CPU time. The benchmarks use them to find
// the workerd processes wrangler dev spawned, to sample their memory under load, and to say how much CPU
// *other* processes took while a figure was measured (the machine is shared; that is the noise).
import fs from "node:fs";

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ; 100 on every Linux we run). */
const HZ = 100;

interface Stat {
  pid: number;
  comm: string;
  ppid: number;
  pgrp: number;
  ticks: number;
  /** CPU time of reaped children (cutime + cstime). */
  childTicks: number;
}

function readStat(pid: number, file = `/proc/${pid}/stat`): Stat | null {
  let s: string;
  try {
    s = fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
  // comm may contain spaces and parentheses: split after the last ')'.
  const close = s.lastIndexOf(")");
  const comm = s.slice(s.indexOf("(") + 1, close);
  const f = s.slice(close + 2).split(" ");
  // f[0] = state (field 3); utime, stime are fields 14, 15 → f[11], f[12].
  return {
    pid,
    comm,
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    ticks: Number(f[11]) + Number(f[12]),
    childTicks: Number(f[13]) + Number(f[14]),
  };
}

export function allPids(): number[] {
  return fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** Every descendant of `root` (not including it), found by walking parent links. */
export function descendants(root: number): number[] {
  const kids = new Map<number, number[]>();
  for (const pid of allPids()) {
    const st = readStat(pid);
    if (!st) continue;
    const list = kids.get(st.ppid) ?? [];
    list.push(pid);
    kids.set(st.ppid, list);
  }
  const out: number[] = [];
  const stack = [...(kids.get(root) ?? [])];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(kids.get(p) ?? []));
  }
  return out;
}

export function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

export function comm(pid: number): string {
  return readStat(pid)?.comm ?? "";
}

export function processGroup(pid: number): number | null {
  return readStat(pid)?.pgrp ?? null;
}

export interface MemStatus {
  pid: number;
  name: string;
  /** Peak resident set size since the process started, KiB. */
  hwmKiB: number;
  rssKiB: number;
}

export function memStatus(pid: number): MemStatus | null {
  let s: string;
  try {
    s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return null;
  }
  const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)?.[1] ?? 0);
  const name = /^Name:\s+(.*)$/m.exec(s)?.[1] ?? "";
  return { pid, name, hwmKiB: field("VmHWM"), rssKiB: field("VmRSS") };
}

/** CPU seconds (user + system) a set of processes used so far. Exited ones simply stop counting. */
export function cpuSeconds(pids: number[]): number {
  let t = 0;
  for (const p of pids) t += readStat(p)?.ticks ?? 0;
  return t / HZ;
}

/**
 * Busy and total CPU seconds of the whole machine since boot (all cores), from /proc/stat. `steal` (inside
 * `busy`) is time the hypervisor gave our virtual CPUs' turn to someone else: on a shared VM, the part of
 * "busy" that is not any process here.
 */
export function machineCpu(): { busy: number; total: number; steal: number } {
  const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // guest time is already inside user/nice
  return { busy: (total - idle) / HZ, total: total / HZ, steal: (v[7] ?? 0) / HZ };
}

/**
 * Measures, over a window, how many cores the whole machine used and how many of those were ours (this
 * process and its descendants: load generators, wrangler, workerd, the embedded database). The rest is
 * other people's work on the shared box.
 */
export class CpuWindow {
  private m0 = machineCpu();
  private ours0 = this.ours();
  private runtime0: number;
  private threads0: Map<string, number>;
  private waits0: Map<string, number>;
  private t0 = performance.now();

  /** `runtime`: the server's processes (workerd), whose CPU time per operation is the noise-robust cost. */
  constructor(private runtime: () => number[] = () => []) {
    this.runtime0 = cpuSeconds(runtime());
    this.threads0 = threadTicks(runtime());
    this.waits0 = threadWaitNs(runtime());
  }

  /** This process, its live descendants, and the children it already reaped (their time moved to us). */
  private ours(): number {
    const self = readStat(process.pid);
    return cpuSeconds(descendants(process.pid)) + ((self?.ticks ?? 0) + (self?.childTicks ?? 0)) / HZ;
  }

  /**
   * A grandchild that exited is counted by nobody here, so "ours" is a lower bound (wrangler reaps workerd).
   * "Other" is other processes and the kernel; the hypervisor's steal is reported apart from it.
   */
  finish(): {
    seconds: number;
    machineCores: number;
    ourCores: number;
    otherCores: number;
    stealCores: number;
    runtimeCpuSeconds: number;
    busiestThreadCores: number;
    busiestThreadWaitCores: number;
  } {
    const m1 = machineCpu();
    const secs = (performance.now() - this.t0) / 1000;
    const machine = (m1.busy - this.m0.busy) / secs;
    const steal = (m1.steal - this.m0.steal) / secs;
    const ours = Math.max(0, (this.ours() - this.ours0) / secs);
    const busiest = this.busiestThread();
    return {
      seconds: round(secs, 1),
      machineCores: round(machine, 2),
      ourCores: round(ours, 2),
      otherCores: round(Math.max(0, machine - steal - ours), 2),
      stealCores: round(steal, 2),
      runtimeCpuSeconds: round(cpuSeconds(this.runtime()) - this.runtime0, 2),
      busiestThreadCores: round(busiest.ticks / HZ / secs, 2),
      busiestThreadWaitCores: round(busiest.waitNs / 1e9 / secs, 2),
    };
  }

  /**
   * CPU ticks of the runtime's busiest thread over the window, and how long it waited, runnable, for a core
   * (the scheduler's run queue). All of a Worker's JavaScript (the Worker and every Durable Object of its
   * script) runs in one isolate, which one thread at a time holds: when the two add up to ~1.0 core, the
   * isolate had work all the time, and only the cores it shares with everything else held it back.
   */
  private busiestThread(): { ticks: number; waitNs: number } {
    let max = 0;
    let tid = "";
    for (const [t, ticks] of threadTicks(this.runtime())) {
      const used = ticks - (this.threads0.get(t) ?? 0);
      if (used >= max) [max, tid] = [used, t];
    }
    const wait = threadWaitNs(this.runtime()).get(tid);
    return { ticks: max, waitNs: wait === undefined ? 0 : wait - (this.waits0.get(tid) ?? 0) };
  }
}

/** Nanoseconds each thread ("pid/tid") spent runnable but waiting for a core: schedstat's second field. */
function threadWaitNs(pids: number[]): Map<string, number> {
  return perThread(pids, (dir) => {
    const wait = Number(fs.readFileSync(`${dir}/schedstat`, "utf8").split(" ")[1]);
    return Number.isFinite(wait) ? wait : null;
  });
}

/** CPU ticks per thread ("pid/tid") of these processes. */
function threadTicks(pids: number[]): Map<string, number> {
  return perThread(pids, (dir, tid) => readStat(tid, `${dir}/stat`)?.ticks ?? null);
}

/** One reading per live thread of these processes, keyed "pid/tid"; threads that end meanwhile are skipped. */
function perThread(pids: number[], read: (dir: string, tid: number) => number | null): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      let v: number | null = null;
      try {
        v = read(`/proc/${pid}/task/${tid}`, Number(tid));
      } catch {
        // the thread ended
      }
      if (v !== null) out.set(`${pid}/${tid}`, v);
    }
  }
  return out;
}

const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
