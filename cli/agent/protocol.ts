// The worker protocol's wire shapes (PRODUCT.md §3 "Workers", §5) and checks for what the server sends.
// The agent trusts the control plane, but a malformed message must not crash a host running other jobs,
// so every inbound message is validated and bad parts are logged and skipped.

/** A fencing token; echoed back exactly as received. */
export type Lease = number | string;

export interface GpuInfo {
  index: number;
  model: string;
  type: string;
  memoryMiB: number;
  uuid: string;
}

export interface RegisterRequest {
  hostname: string;
  gpus: GpuInfo[];
  labels: Record<string, string>;
  agentVersion: string;
}

export interface Registration {
  workerId: string;
  token: string;
  heartbeatIntervalSeconds: number;
  leaseTtlSeconds: number;
  poolId?: string;
}

export type UpdateState = "running" | "succeeded" | "failed";

export interface JobUpdate {
  jobId: string;
  lease: Lease;
  state: UpdateState;
  exitCode?: number;
  message?: string;
  reason?: string;
  logTail?: string;
}

export interface JobSpec {
  name: string;
  command: string[];
  env: Record<string, string>;
  maxRuntimeSeconds?: number;
  attempt: number;
  arrayIndex?: number;
}

export interface Assignment {
  jobId: string;
  lease: Lease;
  gpuIndices: number[];
  spec: JobSpec;
}

export interface HeartbeatRequest {
  running: { jobId: string; lease: Lease }[];
  updates?: JobUpdate[];
}

export interface HeartbeatResponse {
  /** Raw entries; each is checked with parseAssignment when it is started. */
  assignments: unknown[];
  cancel: string[];
  drain: boolean;
  rejected: { jobId: string; code: string }[];
}

/** A heartbeat sent over the live channel: the HTTP heartbeat's body plus `type` and a reply `id`. */
export interface ChannelHeartbeatFrame extends HeartbeatRequest {
  type: "heartbeat";
  /** 1–64 characters, unique per heartbeat of a connection; the reply carries it back. */
  id: string;
}

/** The control plane's one reply to a channel heartbeat (`id` is null when it could not read the frame). */
export type ChannelHeartbeatReply =
  | { id: string | null; ok: true; response: HeartbeatResponse }
  | { id: string | null; ok: false; status: number; code: string; detail: string };

export type ChannelMessage =
  | { type: "assignments"; assignments: unknown[] }
  | { type: "cancel"; jobIds: string[] }
  | { type: "drain" }
  | { type: "heartbeat"; reply: ChannelHeartbeatReply }
  /** The shard's greeting once it accepted the socket, naming the worker it bound the socket to. */
  | { type: "hello"; workerId: string | null };

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const isLease = (v: unknown): v is Lease =>
  (typeof v === "number" && Number.isFinite(v)) || (typeof v === "string" && v !== "");

export function parseRegistration(body: unknown): Registration {
  if (!isObject(body)) throw new ProtocolError("registration response is not a JSON object");
  const { workerId, token, heartbeatIntervalSeconds, leaseTtlSeconds, poolId } = body;
  if (typeof workerId !== "string" || workerId === "") throw new ProtocolError("registration lacks workerId");
  if (typeof token !== "string" || token === "") throw new ProtocolError("registration lacks token");
  const hb =
    typeof heartbeatIntervalSeconds === "number" && heartbeatIntervalSeconds > 0
      ? heartbeatIntervalSeconds
      : 10;
  const ttl = typeof leaseTtlSeconds === "number" && leaseTtlSeconds > 0 ? leaseTtlSeconds : 30;
  return {
    workerId,
    token,
    heartbeatIntervalSeconds: hb,
    leaseTtlSeconds: ttl,
    ...(typeof poolId === "string" ? { poolId } : {}),
  };
}

export function parseHeartbeatResponse(body: unknown): HeartbeatResponse {
  if (!isObject(body)) throw new ProtocolError("heartbeat response is not a JSON object");
  const rejected: { jobId: string; code: string }[] = [];
  if (Array.isArray(body.rejected)) {
    for (const r of body.rejected) {
      if (isObject(r) && typeof r.jobId === "string") {
        rejected.push({ jobId: r.jobId, code: typeof r.code === "string" ? r.code : "Rejected" });
      }
    }
  }
  return {
    assignments: Array.isArray(body.assignments) ? body.assignments : [],
    cancel: Array.isArray(body.cancel)
      ? body.cancel.filter((id): id is string => typeof id === "string")
      : [],
    drain: body.drain === true,
    rejected,
  };
}

export type ParsedAssignment =
  | { ok: true; assignment: Assignment }
  /** jobId/lease are set when known, so the agent can report the job failed instead of leaving it leased. */
  | { ok: false; error: string; jobId?: string; lease?: Lease };

export function parseAssignment(raw: unknown): ParsedAssignment {
  if (!isObject(raw)) return { ok: false, error: "assignment is not an object" };
  const { jobId, lease, gpuIndices, spec } = raw;
  if (typeof jobId !== "string" || jobId === "") return { ok: false, error: "assignment lacks jobId" };
  if (!isLease(lease)) return { ok: false, error: "assignment lacks lease", jobId };
  const bad = (error: string): ParsedAssignment => ({ ok: false, error, jobId, lease });
  if (!Array.isArray(gpuIndices) || !gpuIndices.every((i) => Number.isInteger(i) && i >= 0)) {
    return bad("gpuIndices must be an array of GPU indices");
  }
  if (!isObject(spec)) return bad("assignment lacks spec");
  const { command, env, maxRuntimeSeconds, attempt, arrayIndex, name } = spec;
  if (!Array.isArray(command) || command.length === 0 || !command.every((c) => typeof c === "string")) {
    return bad("spec.command must be a non-empty array of strings");
  }
  if (command[0] === "") return bad("spec.command[0] is empty");
  const jobEnv: Record<string, string> = {};
  if (env !== undefined && env !== null) {
    if (!isObject(env)) return bad("spec.env must be an object of strings");
    for (const [k, v] of Object.entries(env)) {
      if (typeof v !== "string") return bad(`spec.env.${k} must be a string`);
      jobEnv[k] = v;
    }
  }
  if (maxRuntimeSeconds !== undefined && maxRuntimeSeconds !== null) {
    if (typeof maxRuntimeSeconds !== "number" || !(maxRuntimeSeconds > 0)) {
      return bad("spec.maxRuntimeSeconds must be a positive number");
    }
  }
  return {
    ok: true,
    assignment: {
      jobId,
      lease,
      gpuIndices: gpuIndices as number[],
      spec: {
        name: typeof name === "string" ? name : jobId,
        command: command as string[],
        env: jobEnv,
        attempt: typeof attempt === "number" ? attempt : 1,
        ...(typeof maxRuntimeSeconds === "number" ? { maxRuntimeSeconds } : {}),
        ...(typeof arrayIndex === "number" ? { arrayIndex } : {}),
      },
    },
  };
}

/** Parses one live-channel frame; null for anything unknown (newer servers may add message types). */
export function parseChannelMessage(text: string): ChannelMessage | null {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(msg)) return null;
  switch (msg.type) {
    case "assignments":
      return { type: "assignments", assignments: Array.isArray(msg.assignments) ? msg.assignments : [] };
    case "cancel":
      return {
        type: "cancel",
        jobIds: Array.isArray(msg.jobIds)
          ? msg.jobIds.filter((id): id is string => typeof id === "string")
          : [],
      };
    case "drain":
      return { type: "drain" };
    case "heartbeat":
      return { type: "heartbeat", reply: parseChannelHeartbeatReply(msg) };
    case "hello":
      return { type: "hello", workerId: typeof msg.workerId === "string" ? msg.workerId : null };
    default:
      return null;
  }
}

function parseChannelHeartbeatReply(msg: Record<string, unknown>): ChannelHeartbeatReply {
  const id = typeof msg.id === "string" && msg.id !== "" ? msg.id : null;
  if (msg.ok === true) return { id, ok: true, response: parseHeartbeatResponse(msg) };
  // A reply that is neither a success nor a well-formed refusal counts as a server-side failure.
  const status = typeof msg.status === "number" && Number.isInteger(msg.status) ? msg.status : 502;
  return {
    id,
    ok: false,
    status: msg.ok === false ? status : 502,
    code: typeof msg.code === "string" ? msg.code : "BadReply",
    detail: typeof msg.detail === "string" ? msg.detail : "malformed heartbeat reply",
  };
}
