// Where the whole machine's CPU went over a window, by process group: our workerd, wrangler dev's proxy,
// the load generators, the orchestrator (which also hosts the embedded database), and the rest. A figure
// like jobs/s on a 2-core machine is bounded by the sum, so the split says which part a target would need
// to shrink, and which of them a deployment would not pay at all (the proxy, the generators).
import { cpuSeconds, machineCpu } from "./proc.ts";

export type PidGroups = Record<string, () => number[]>;

export interface CpuShare {
  group: string;
  /** CPU seconds over the window. */
  seconds: number;
  /** Average cores used over the window. */
  cores: number;
  /** CPU milliseconds per operation (`per` in finish()). */
  msPerOp: number;
}

export class CpuSplit {
  private t0 = performance.now();
  private m0 = machineCpu();
  private start: Map<string, number>;

  constructor(private groups: PidGroups) {
    this.start = new Map(Object.entries(groups).map(([k, f]) => [k, cpuSeconds(f())]));
  }

  /** Shares per group, the hypervisor's steal, and an "everything else" row (kernel, other processes). */
  finish(per: number): CpuShare[] {
    const secs = (performance.now() - this.t0) / 1000;
    const m1 = machineCpu();
    const machine = m1.busy - this.m0.busy;
    const steal = m1.steal - this.m0.steal;
    const rows: CpuShare[] = [];
    let known = 0;
    for (const [group, f] of Object.entries(this.groups)) {
      const s = Math.max(0, cpuSeconds(f()) - (this.start.get(group) ?? 0));
      known += s;
      rows.push(share(group, s, secs, per));
    }
    rows.push(share("taken by the hypervisor (steal time)", steal, secs, per));
    rows.push(
      share("everything else (kernel, other processes)", Math.max(0, machine - steal - known), secs, per),
    );
    rows.push(share("whole machine", machine, secs, per));
    return rows;
  }
}

function share(group: string, seconds: number, secs: number, per: number): CpuShare {
  const r = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
  return {
    group,
    seconds: r(seconds, 2),
    cores: r(seconds / secs, 2),
    msPerOp: r((seconds * 1000) / Math.max(1, per), 3),
  };
}
