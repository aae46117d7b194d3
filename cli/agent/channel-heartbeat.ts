// One heartbeat exchange (running jobs + pending updates out; assignments, cancels, drain, refusals in),
// over the live channel when it is up and over HTTP otherwise. Both carry the same body and get the same
// answer; a channel frame costs the control plane about a fifteenth of an HTTP request's CPU.
//
// HTTP stays the authoritative fallback: whenever the channel leaves any doubt (not connected, the socket
// closed, no reply within half a heartbeat interval, a refusal other than 401/404) the same batch goes
// over HTTP in the same beat, so the channel can never make a heartbeat late enough to trip the fence.
// Updates are idempotent on the server, so a late channel frame repeating a batch does no harm.
// A connection that never answered a heartbeat frame (an older control plane) is not asked again until
// the channel reconnects.
import { describeError } from "../lib/errors.ts";
import { ApiError, isRetryable } from "../lib/http.ts";
import type { Logger } from "../lib/log.ts";
import { ChannelRequestError, type LiveChannel } from "./channel.ts";
import type { ControlPlaneClient } from "./client.ts";
import { MAX_BATCH } from "./heartbeat.ts";
import type {
  ChannelHeartbeatFrame,
  ChannelHeartbeatReply,
  HeartbeatRequest,
  HeartbeatResponse,
  Registration,
} from "./protocol.ts";
import type { QueuedUpdate, UpdateQueue } from "./updates.ts";

/** The largest frame the control plane reads; it answers bigger ones with 413. */
export const MAX_CHANNEL_FRAME_BYTES = 1024 * 1024;
/** What the agent aims for per channel frame (the queue's size estimate is rough). */
export const CHANNEL_FRAME_TARGET_BYTES = 512 * 1024;
/** Log-tail bytes per HTTP heartbeat (the server takes up to 8 MiB). */
const HTTP_BATCH_BYTES = 4 * 1024 * 1024;

export type HeartbeatPath = "channel" | "http";

export type HeartbeatOutcome =
  /** `sentAt` (performance.now()) is no later than when the control plane saw the heartbeat. */
  | { ok: true; response: HeartbeatResponse; batchFull: boolean; sentAt: number; via: HeartbeatPath }
  | { ok: false; error: unknown; via: HeartbeatPath };

/** How long a channel heartbeat may wait for its reply before the beat falls back to HTTP. */
export function channelReplyTimeoutMs(reg: Registration): number {
  // Half an interval: a regular beat plus the wait plus an HTTP round trip stays well inside the fencing
  // threshold (at least one interval past the previous beat with the recommended TTL ≥ 2 intervals).
  return Math.min(10_000, reg.heartbeatIntervalSeconds * 500);
}

export interface HeartbeatSenderOptions {
  client: ControlPlaneClient;
  queue: UpdateQueue;
  logger: Logger;
  signal: AbortSignal;
  /** The channel to try first; undefined or not connected means HTTP. */
  channel(): LiveChannel | undefined;
  timeoutMs(reg: Registration): number;
  /** False once the agent re-registers after `epoch`: falling back to HTTP would be pointless. */
  current(epoch: number): boolean;
}

type Running = HeartbeatRequest["running"];
type Batch = { entries: QueuedUpdate[]; more: boolean };
type Attempt = { outcome: HeartbeatOutcome } | { fallback: Batch };

export class HeartbeatSender {
  private seq = 0;
  private failing = false;
  /** The connection heartbeats last went to; its replies and consecutive timeouts. */
  private conn: number | undefined;
  private answered = false;
  private misses = 0;
  private readonly told = new Set<string>();
  /** Heartbeats delivered, by path. */
  readonly delivered = { channel: 0, http: 0 };

  constructor(private readonly opts: HeartbeatSenderOptions) {}

  /** True after a failed heartbeat until the next one gets through. */
  get isFailing(): boolean {
    return this.failing;
  }

  /** Sends one heartbeat carrying as many pending updates as fit; on failure they are put back. */
  async exchange(reg: Registration, epoch: number, running: Running): Promise<HeartbeatOutcome> {
    const out = await this.attempt(reg, epoch, running);
    if (this.opts.current(epoch)) this.note(out);
    return out;
  }

  private async attempt(reg: Registration, epoch: number, running: Running): Promise<HeartbeatOutcome> {
    const channel = this.usableChannel();
    let batch: Batch | undefined;
    if (channel) {
      const tried = await this.viaChannel(channel, reg, running);
      if ("outcome" in tried) return tried.outcome;
      batch = tried.fallback;
      if (!this.opts.current(epoch) || this.opts.signal.aborted) {
        this.opts.queue.releaseBatch(batch.entries);
        return {
          ok: false,
          error: new Error("the registration changed during the heartbeat"),
          via: "channel",
        };
      }
    }
    return this.viaHttp(reg, running, batch ?? this.opts.queue.take(MAX_BATCH, HTTP_BATCH_BYTES));
  }

  private usableChannel(): LiveChannel | undefined {
    const channel = this.opts.channel();
    const conn = channel?.connection;
    if (!channel || conn === undefined) return undefined;
    if (conn !== this.conn) {
      this.conn = conn;
      this.answered = false;
      this.misses = 0;
    }
    return this.misses < this.missLimit() ? channel : undefined;
  }

  /** Consecutive timeouts after which a connection is not used for heartbeats any more. */
  private missLimit(): number {
    return this.answered ? 3 : 1;
  }

  private async viaChannel(channel: LiveChannel, reg: Registration, running: Running): Promise<Attempt> {
    const log = this.opts.logger;
    const conn = this.conn;
    const id = `hb-${++this.seq}`;
    const frame: ChannelHeartbeatFrame = { type: "heartbeat", id, running };
    const budget = CHANNEL_FRAME_TARGET_BYTES - JSON.stringify(running).length;
    const batch = this.opts.queue.take(MAX_BATCH, Math.max(0, budget));
    if (batch.entries.length > 0) frame.updates = batch.entries.map((e) => e.update);
    const text = JSON.stringify(frame);
    const bytes = Buffer.byteLength(text);
    if (bytes > MAX_CHANNEL_FRAME_BYTES) {
      log.debug("heartbeat too large for the live channel; sending it over HTTP", { bytes });
      return { fallback: batch };
    }
    const sentAt = performance.now();
    let reply: ChannelHeartbeatReply;
    try {
      reply = await channel.request(id, text, this.opts.timeoutMs(reg));
    } catch (err) {
      this.missed(err, conn);
      log.debug("no heartbeat reply on the live channel; using HTTP", { id, error: describeError(err) });
      return { fallback: batch };
    }
    if (conn === this.conn) {
      this.answered = true;
      this.misses = 0;
    }
    if (reply.ok) {
      this.opts.queue.settleBatch(batch.entries, reply.response.rejected);
      this.delivered.channel++;
      this.logDelivered("channel", batch, bytes);
      return {
        outcome: { ok: true, response: reply.response, batchFull: batch.more, sentAt, via: "channel" },
      };
    }
    const error = new ApiError({
      type: "about:blank",
      title: "live channel heartbeat refused",
      status: reply.status,
      code: reply.code,
      detail: reply.detail,
    });
    if (reply.status === 401 || reply.status === 404) {
      // The worker is unknown or its token invalid: the agent re-registers, as after an HTTP 401/404.
      this.opts.queue.releaseBatch(batch.entries);
      return { outcome: { ok: false, error, via: "channel" } };
    }
    // 400/413: this agent sent something the channel refuses; 5xx/429: the channel path failed. Either
    // way HTTP carries this beat (it fails there too if the control plane is really down).
    const key = `${reply.status} ${reply.code}`;
    const level = this.told.has(key) ? "debug" : isRetryable(error) ? "warn" : "error";
    this.told.add(key);
    log[level]("the control plane refused a heartbeat on the live channel; sending it over HTTP", {
      id,
      bytes,
      error: error.message,
    });
    return { fallback: batch };
  }

  private missed(err: unknown, conn: number | undefined): void {
    if (!(err instanceof ChannelRequestError) || err.reason !== "timeout" || conn !== this.conn) return;
    this.misses++;
    if (this.misses !== this.missLimit()) return;
    const fields = { timeouts: this.misses, until: "the live channel reconnects" };
    if (this.answered)
      this.opts.logger.warn("the live channel stopped answering heartbeats; using HTTP", fields);
    else
      this.opts.logger.info(
        "the control plane does not answer heartbeats on the live channel; using HTTP",
        fields,
      );
  }

  private async viaHttp(reg: Registration, running: Running, batch: Batch): Promise<HeartbeatOutcome> {
    const body: HeartbeatRequest = { running };
    if (batch.entries.length > 0) body.updates = batch.entries.map((e) => e.update);
    const sentAt = performance.now();
    try {
      const response = await this.opts.client.heartbeat(reg, body, this.opts.signal);
      this.opts.queue.settleBatch(batch.entries, response.rejected);
      this.delivered.http++;
      this.logDelivered("http", batch);
      return { ok: true, response, batchFull: batch.more, sentAt, via: "http" };
    } catch (error) {
      this.opts.queue.releaseBatch(batch.entries);
      return { ok: false, error, via: "http" };
    }
  }

  private logDelivered(via: HeartbeatPath, batch: Batch, bytes?: number): void {
    const log = this.opts.logger;
    if (!log.enabled("debug")) return;
    log.debug("heartbeat delivered", {
      via,
      updates: batch.entries.length,
      ...(bytes !== undefined ? { bytes } : {}),
      heartbeats: this.delivered.channel + this.delivered.http,
      viaChannel: this.delivered.channel,
    });
  }

  /** Logs when heartbeats start failing and when they get through again (401/404 are the agent's). */
  private note(out: HeartbeatOutcome): void {
    const log = this.opts.logger;
    if (out.ok) {
      if (this.failing) log.info("heartbeat delivered again", { via: out.via });
      this.failing = false;
      return;
    }
    const err = out.error;
    if (err instanceof ApiError && (err.status === 401 || err.status === 404)) return;
    if (this.failing) return;
    this.failing = true;
    const level = isRetryable(err) ? "warn" : "error";
    log[level]("heartbeat failed; running jobs continue", { error: describeError(err) });
  }
}
