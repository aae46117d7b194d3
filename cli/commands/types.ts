// The API's response shapes, as far as the CLI reads them (functions/schemas.ts is the full contract).
// --json prints what the server sent, untouched; these types only serve the tables.

export const JOB_STATES = ["queued", "scheduled", "running", "succeeded", "failed", "cancelled"] as const;
export const TERMINAL_STATES: ReadonlySet<string> = new Set(["succeeded", "failed", "cancelled"]);

export interface Job {
  id: string;
  tenantId: string;
  name: string;
  user: string;
  state: string;
  priority: string;
  gpus: number;
  gpuType: string | null;
  command: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  maxRuntimeSeconds: number | null;
  maxRetries: number;
  attempt: number;
  lease: number | null;
  exitCode: number | null;
  reason: string | null;
  message: string | null;
  workerId: string | null;
  gpuIndices: number[] | null;
  assignedGpuType: string | null;
  cancelRequested: boolean;
  arrayId: string | null;
  arrayIndex: number | null;
  dependsOn: { job: string; condition: string }[] | null;
  warnings: { policyId: string; name: string; message: string }[];
  submittedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  updatedAt: string;
  nextAttemptAt: string | null;
  array?: { id: string; size: number };
}

export interface JobPage {
  items: Job[];
  nextCursor: string | null;
}

export interface JobEventRow {
  seq: number;
  at: string;
  from: string | null;
  to: string;
  reason: string | null;
  message: string | null;
  attempt: number;
  workerId: string | null;
  exitCode: number | null;
}

export interface Explanation {
  jobId: string;
  state: string;
  reason: { code: string; message: string };
  position?: { tenant: number; priority: number };
  estimatedStart?: { at: string; basis: string };
}

/** GET /v1/arrays/{id}: an array's size and its tasks' counts by state (live). */
export interface JobArray {
  id: string;
  name: string;
  size: number;
  state: string;
  counts: Record<string, number>;
  submittedAt: string;
}

export const isArrayId = (id: string) => id.startsWith("arr_");

export interface LogTail {
  jobId: string;
  attempt: number;
  tail: string;
  updatedAt: string | null;
}

export const isTerminal = (state: string) => TERMINAL_STATES.has(state);
