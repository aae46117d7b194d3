// The records Durable Objects send to Postgres through their outboxes. Times are epoch milliseconds.
export interface JobRecord {
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
  arrayId: string | null;
  arrayIndex: number | null;
  dependsOn: unknown;
  warnings: unknown;
  policyVersions: unknown;
  idempotencyKey: string | null;
  submittedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  updatedAt: number;
  version: number;
}

export interface EventRecord {
  tenantId: string;
  seq: number;
  jobId: string;
  at: number;
  fromState: string | null;
  toState: string;
  reason: string | null;
  message: string | null;
  attempt: number;
  lease: number | null;
  workerId: string | null;
  exitCode: number | null;
}

export interface LogRecord {
  jobId: string;
  tenantId: string;
  attempt: number;
  tail: string;
  updatedAt: number;
}

export interface UsageRecord {
  id: string;
  tenantId: string;
  jobId: string;
  user: string;
  gpuType: string;
  gpus: number;
  startedAt: number;
  endedAt: number;
}

export interface AuditRecord {
  id: string;
  at: number;
  actor: string;
  tenantId: string | null;
  action: string;
  target: string | null;
  requestId: string;
  detail: unknown;
}

export interface AllocationRecord {
  id: string;
  tenantId: string;
  gpus: number;
  gpuType: string | null;
  note: string | null;
  createdAt: number;
  releasedAt: number | null;
}

export interface WorkerRecord {
  id: string;
  poolId: string;
  hostname: string;
  gpus: unknown;
  labels: Record<string, string>;
  state: string;
  registeredAt: number;
  lastSeenAt: number | null;
  updatedAt: number;
  version: number;
}

export type OutboxItem =
  | { kind: "job"; data: JobRecord }
  /** The job changed: its current row is read when the batch is flushed (one snapshot per batch). */
  | { kind: "jobref"; data: { id: string } }
  | { kind: "event"; data: EventRecord }
  | { kind: "log"; data: LogRecord }
  | { kind: "usage"; data: UsageRecord }
  | { kind: "audit"; data: AuditRecord }
  | { kind: "allocation"; data: AllocationRecord }
  | { kind: "worker"; data: WorkerRecord };
