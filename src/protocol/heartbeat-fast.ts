// Heartbeats checked without zod, for the ones that are plainly valid: live-channel frames, and the body of
// POST /v1/workers/{id}/heartbeat (functions/workers.ts). Inside workerd zod cannot compile its object
// checks (code generation is not allowed there), so it walks every heartbeat generically: ~30 % of a
// frame's handling in the dispatch profile. This accepts a subset of what the schemas accept and returns
// the very value zod would return for it; anything else (an invalid heartbeat, or a NUL zod would rewrite)
// gets null, and the caller runs the schema, which decides and words the error.
// test/unit/heartbeat-fast.test.ts holds the two to that on random frames and bodies.
import type { z } from "zod";
import type { ChannelHeartbeatSchema, HeartbeatBodySchema } from "./heartbeat.ts";

export type ChannelHeartbeat = z.infer<typeof ChannelHeartbeatSchema>;
export type HeartbeatBody = z.infer<typeof HeartbeatBodySchema>;

const STATES = new Set(["running", "succeeded", "failed", "cancelled"]);
const FRAME_KEYS = new Set(["type", "id", "running", "updates"]);
const BODY_KEYS = new Set(["running", "updates"]);
const UPDATE_KEYS = new Set(["jobId", "lease", "state", "exitCode", "message", "reason", "logTail"]);

/** The frame itself when it is certainly valid as it stands; null when the schema must judge it. */
export function fastChannelHeartbeat(raw: unknown): ChannelHeartbeat | null {
  if (!isRecord(raw) || !onlyKeys(raw, FRAME_KEYS)) return null;
  const { type, id } = raw;
  if (type !== "heartbeat" || typeof id !== "string" || id.length < 1 || id.length > 64) return null;
  return heartbeatFields(raw) ? (raw as ChannelHeartbeat) : null;
}

/** The same for the body of POST /v1/workers/{id}/heartbeat (HeartbeatBodySchema). */
export function fastHeartbeatBody(raw: unknown): HeartbeatBody | null {
  if (!isRecord(raw) || !onlyKeys(raw, BODY_KEYS)) return null;
  return heartbeatFields(raw) ? (raw as HeartbeatBody) : null;
}

function heartbeatFields({ running, updates }: Record<string, unknown>): boolean {
  if (!Array.isArray(running) || running.length > 4096) return false;
  for (const r of running) if (!runningEntry(r)) return false;
  if (updates !== undefined) {
    if (!Array.isArray(updates) || updates.length > 2000) return false;
    for (const u of updates) if (!update(u)) return false;
  }
  return true;
}

function runningEntry(r: unknown): boolean {
  if (!isRecord(r)) return false;
  let n = 0;
  for (const k in r) {
    if (k !== "jobId" && k !== "lease") return false;
    n++;
  }
  return n === 2 && shortString(r.jobId, 200) && Number.isSafeInteger(r.lease);
}

function update(u: unknown): boolean {
  if (!isRecord(u) || !onlyKeys(u, UPDATE_KEYS)) return false;
  if (!shortString(u.jobId, 200)) return false;
  if (!Number.isSafeInteger(u.lease) || (u.lease as number) < 0) return false;
  if (typeof u.state !== "string" || !STATES.has(u.state)) return false;
  if ("exitCode" in u && u.exitCode !== null && !Number.isSafeInteger(u.exitCode)) return false;
  return agentText(u, "message", 4096) && agentText(u, "reason", 64) && agentText(u, "logTail", 70_000);
}

/** Absent, null, or a string within `max` that holds no NUL (the schema would rewrite that one). */
function agentText(u: Record<string, unknown>, key: string, max: number): boolean {
  if (!(key in u)) return true;
  const v = u[key];
  return v === null || (typeof v === "string" && v.length <= max && !v.includes("\u0000"));
}

function shortString(v: unknown, max: number): boolean {
  return typeof v === "string" && v.length <= max;
}

/** A plain object as JSON.parse makes them (no arrays, no prototypes other than Object's). */
function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

/** Own keys only from `allowed`, none of them holding undefined (JSON never makes one). */
function onlyKeys(o: Record<string, unknown>, allowed: Set<string>): boolean {
  for (const k in o) if (!allowed.has(k) || o[k] === undefined) return false;
  return true;
}
