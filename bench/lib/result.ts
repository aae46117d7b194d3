// What every suite returns: figures with their targets (MET / NOT MET is decided here, once), the
// commands to reproduce them, how busy the machine was meanwhile, and the raw details for bench/out/.

export interface Target {
  op: ">=" | "<=";
  value: number;
}

export interface Figure {
  id: string;
  label: string;
  value: number;
  unit: string;
  target?: Target;
  /** Comparable figures from other systems, stated next to ours. */
  anchor?: string;
  note?: string;
}

export interface Noise {
  phase: string;
  seconds: number;
  machineCores: number;
  ourCores: number;
  otherCores: number;
  /** Cores the hypervisor took from this VM (steal time); absent in results from before it was measured. */
  stealCores?: number;
  /** CPU seconds the runtime (workerd) used in the phase: its cost, whatever else shared the machine. */
  runtimeCpuSeconds: number;
  /** The runtime's busiest thread, in cores: near 1.0, the one isolate running all our JavaScript is full. */
  busiestThreadCores?: number;
  /** How long that thread was runnable but waited for a core, in cores; on-CPU + this ≈ 1.0: the isolate is full. */
  busiestThreadWaitCores?: number;
}

export interface SuiteResult {
  suite: string;
  title: string;
  measuredAt: string;
  /** How the load was generated and what exactly was timed. */
  method: string[];
  figures: Figure[];
  noise: Noise[];
  notes: string[];
  /** Extra tables for the report (e.g. where the machine's CPU went in a phase). */
  tables?: { title: string; header: string[]; rows: (string | number)[][] }[];
  details: unknown;
}

export function fig(
  id: string,
  label: string,
  value: number,
  unit: string,
  extra: { target?: Target; anchor?: string; note?: string } = {},
): Figure {
  return { id, label, value: Number.isFinite(value) ? Math.round(value * 100) / 100 : value, unit, ...extra };
}

export function met(f: Figure): boolean | null {
  if (!f.target || !Number.isFinite(f.value)) return f.target ? false : null;
  return f.target.op === ">=" ? f.value >= f.target.value : f.value <= f.target.value;
}

export const atLeast = (value: number): Target => ({ op: ">=", value });
export const atMost = (value: number): Target => ({ op: "<=", value });

/** Anchors: what comparable systems publish, quoted beside our figures (research/anchors-*.md). */
export const ANCHORS = {
  slurmSubmit: "Slurm: ~1,000 submits/s (sbatch, high-throughput guide)",
  slurmJobs: "Slurm: ~500 simple jobs/s end to end",
  awsBatch: "AWS Batch: 50 SubmitJob/s (API limit)",
  kueue: "Kueue CI perf test: ≈43 workloads/s admitted",
  phoenix: "Phoenix seed: 1,000 req/s with P99 < 100 ms",
} as const;
