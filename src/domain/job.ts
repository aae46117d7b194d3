// Job vocabulary and the state machine of PRODUCT.md §4. Every transition in the system is checked here.
export const JOB_STATES = ["queued", "scheduled", "running", "succeeded", "failed", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL: ReadonlySet<JobState> = new Set(["succeeded", "failed", "cancelled"]);
/** States that hold GPUs and quota: taken on scheduling, given back on leaving them. */
export const HOLDS_QUOTA: ReadonlySet<JobState> = new Set(["scheduled", "running"]);

export const PRIORITIES = ["low", "normal", "high"] as const;
export type Priority = (typeof PRIORITIES)[number];
export const priorityRank = (p: Priority): number => PRIORITIES.indexOf(p);
export const priorityName = (r: number): Priority => PRIORITIES[r] ?? "normal";

const ALLOWED: Record<JobState, readonly JobState[]> = {
  queued: ["scheduled", "cancelled", "failed"],
  // scheduled → succeeded/failed: a fast job may finish before its "running" report arrives.
  scheduled: ["running", "succeeded", "failed", "cancelled", "queued"],
  running: ["succeeded", "failed", "cancelled", "queued"],
  succeeded: [],
  failed: [],
  cancelled: [],
};

export function canTransition(from: JobState, to: JobState): boolean {
  return ALLOWED[from].includes(to);
}

export const isTerminal = (s: JobState) => TERMINAL.has(s);

/** Requeues that are not the job's fault (worker lost, lease expired) before it fails with WorkerLost. */
export const MAX_WORKER_LOST_REQUEUES = 3;

/** Backoff before re-running a job that failed on its own: 10 s × 2^(attempt−1), at most 10 min. */
export function retryBackoffMs(attempt: number): number {
  return Math.min(10_000 * 2 ** Math.max(0, attempt - 1), 600_000);
}

export interface DependsOn {
  job: string;
  condition: "succeeded" | "finished";
}

/** What a tenant submits (validated at the gateway), normalised. */
export interface JobSpec {
  name: string;
  command: string[];
  gpus: number;
  gpuType: string | null;
  priority: Priority;
  maxRuntimeSeconds: number | null;
  maxRetries: number;
  env: Record<string, string>;
  labels: Record<string, string>;
  user: string;
  dependsOn?: DependsOn[];
}

/** A submission as the tenant's object takes it: the user may be left to the key's owner; arrays are N tasks. */
export interface SubmitJob extends Omit<JobSpec, "user"> {
  user?: string | null;
  array?: { size: number } | null;
}

/** GPU types match exactly, ignoring case; "no type" matches any type. */
export const gpuTypeKey = (t: string | null | undefined): string => (t ? t.trim().toUpperCase() : "*");

/** Jobs with the same shape are interchangeable for placement. */
export const shapeKey = (gpus: number, gpuType: string | null | undefined) =>
  `${gpus}x${gpuTypeKey(gpuType)}`;

export function parseShape(shape: string): { gpus: number; typeKey: string } {
  const i = shape.indexOf("x");
  return { gpus: Number(shape.slice(0, i)), typeKey: shape.slice(i + 1) };
}

/** Pending-reason codes, in the precedence order of PRODUCT.md §4. */
export const PENDING_REASONS = [
  "PolicyDenied",
  "Dependency",
  "Backoff",
  "QuotaExceeded",
  "NoMatchingWorkers",
  "InsufficientCapacity",
  "PriorityOrFairShare",
] as const;
export type PendingReason = (typeof PENDING_REASONS)[number];
