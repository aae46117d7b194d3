// HTTP calls of the worker protocol. Transport errors surface as ApiError/NetworkError (cli/lib/http.ts);
// retry policy lives with the callers (registration loop, update queue, heartbeat pacing), which know
// whether waiting is right.
import { describeError } from "../lib/errors.ts";
import { ApiError, isRetryable, requestJson } from "../lib/http.ts";
import {
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JobUpdate,
  parseHeartbeatResponse,
  parseRegistration,
  type RegisterRequest,
  type Registration,
} from "./protocol.ts";
import type { SendOutcome } from "./updates.ts";

export interface ClientOptions {
  fetch?: typeof fetch;
  userAgent?: string;
  timeoutMs?: number;
}

export class ControlPlaneClient {
  readonly baseUrl: string;
  constructor(
    baseUrl: string,
    private readonly opts: ClientOptions = {},
  ) {
    // Keep any path prefix (a control plane behind a reverse proxy at /gantry) but no trailing slash.
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  async register(joinToken: string, body: RegisterRequest, signal?: AbortSignal): Promise<Registration> {
    const res = await this.post("/v1/workers/register", joinToken, body, signal);
    return parseRegistration(res);
  }

  async heartbeat(
    reg: Registration,
    body: HeartbeatRequest,
    signal?: AbortSignal,
  ): Promise<HeartbeatResponse> {
    const res = await this.post(`${workerPath(reg)}/heartbeat`, reg.token, body, signal);
    return parseHeartbeatResponse(res);
  }

  async status(reg: Registration, update: JobUpdate, signal?: AbortSignal): Promise<void> {
    const { jobId, ...body } = update;
    await this.post(`${workerPath(reg)}/jobs/${encodeURIComponent(jobId)}/status`, reg.token, body, signal);
  }

  async drain(reg: Registration, signal?: AbortSignal): Promise<void> {
    await this.post(`${workerPath(reg)}/drain`, reg.token, {}, signal, 5_000);
  }

  async deregister(reg: Registration, signal?: AbortSignal): Promise<void> {
    await this.post(`${workerPath(reg)}/deregister`, reg.token, {}, signal, 5_000);
  }

  /** The live channel's address: same host and path prefix, ws(s) scheme. */
  channelUrl(reg: Registration): string {
    const url = new URL(`${this.baseUrl}${workerPath(reg)}/connect`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.toString();
  }

  private async post(path: string, token: string, body: unknown, signal?: AbortSignal, timeoutMs?: number) {
    const { body: res } = await requestJson({
      method: "POST",
      url: `${this.baseUrl}${path}`,
      token,
      body,
      timeoutMs: timeoutMs ?? this.opts.timeoutMs ?? 20_000,
      ...(signal ? { signal } : {}),
      ...(this.opts.fetch ? { fetch: this.opts.fetch } : {}),
      ...(this.opts.userAgent ? { headers: { "user-agent": this.opts.userAgent } } : {}),
    });
    return res;
  }
}

function workerPath(reg: Registration): string {
  return `/v1/workers/${encodeURIComponent(reg.workerId)}`;
}

/**
 * What a failed status call means for the update: 409 (StaleLease, InvalidTransition) and 404 (unknown
 * job) refuse it for good; 401 means this worker was forgotten; overload and outages are retried.
 */
export function statusOutcome(err: unknown): SendOutcome {
  if (!(err instanceof ApiError)) return { kind: "retry", error: describeError(err) };
  if (err.status === 409 || err.status === 404)
    return { kind: "rejected", code: err.problem.code ?? String(err.status) };
  if (err.status === 401) return { kind: "unauthorized" };
  if (isRetryable(err)) return { kind: "retry", error: err.message, retryAfterMs: err.retryAfterMs };
  return { kind: "drop", error: err.message };
}
