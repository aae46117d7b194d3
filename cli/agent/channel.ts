// The live channel: a WebSocket on which the control plane pushes assignments, cancels and drain the
// moment they happen (tens of milliseconds instead of a heartbeat interval). It is an accelerator only:
// when it drops the agent reconnects with backoff and the heartbeat keeps everything correct meanwhile.
// The agent also sends its heartbeats on it (request(): one frame out, the reply with the same id back).
// A request fails when there is no connection, when the socket closes first (at once) or when no reply
// comes in time; the agent then uses HTTP for that heartbeat.
import WebSocket from "ws";
import { Backoff } from "../lib/backoff.ts";
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { type ChannelHeartbeatReply, type ChannelMessage, parseChannelMessage } from "./protocol.ts";

export interface ChannelOptions {
  url: string;
  token: string;
  logger: Logger;
  onMessage(msg: ChannelMessage): void;
  backoff?: { initialMs: number; maxMs: number };
  /** A ping every this often; no pong by the next one means the connection is dead. Default 30 s. */
  pingIntervalMs?: number;
}

/** Why a request() got no reply. */
export class ChannelRequestError extends Error {
  constructor(
    readonly reason: "not-connected" | "send-failed" | "closed" | "timeout",
    message: string,
  ) {
    super(message);
    this.name = "ChannelRequestError";
  }
}

interface Pending {
  resolve(reply: ChannelHeartbeatReply): void;
  reject(err: ChannelRequestError): void;
}

// Numbers every socket of every channel, so a connection is never mistaken for an earlier one.
let connections = 0;

export class LiveChannel {
  private ws: WebSocket | undefined;
  private conn: number | undefined;
  /** Requests waiting for a reply on the current socket. */
  private pending = new Map<string, Pending>();
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private wasConnected = false;
  private failures = 0;

  constructor(private readonly opts: ChannelOptions) {
    this.backoff = new Backoff(opts.backoff ?? { initialMs: 500, maxMs: 10_000 });
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** The open socket's number (a new one after every reconnect); undefined while not connected. */
  get connection(): number | undefined {
    return this.connected ? this.conn : undefined;
  }

  /**
   * Sends `text` (a frame carrying `id`) on the open socket and resolves with the reply carrying that id.
   * Rejects with a ChannelRequestError when not connected, when sending fails, when the socket closes
   * first, or after `timeoutMs`; a reply arriving later is ignored.
   */
  request(id: string, text: string, timeoutMs: number): Promise<ChannelHeartbeatReply> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN)
      return Promise.reject(new ChannelRequestError("not-connected", "the live channel is not connected"));
    const pending = this.pending;
    return new Promise((resolve, reject) => {
      const settle = (fn: () => void) => {
        if (pending.get(id) !== entry) return;
        pending.delete(id);
        clearTimeout(timer);
        fn();
      };
      const entry: Pending = {
        resolve: (reply) => settle(() => resolve(reply)),
        reject: (err) => settle(() => reject(err)),
      };
      const timer = setTimeout(
        () => entry.reject(new ChannelRequestError("timeout", `no reply within ${timeoutMs} ms`)),
        timeoutMs,
      );
      pending
        .get(id)
        ?.reject(new ChannelRequestError("send-failed", "replaced by a request with the same id"));
      pending.set(id, entry);
      const failed = (err: unknown) =>
        entry.reject(new ChannelRequestError("send-failed", `sending failed: ${describeError(err)}`));
      try {
        ws.send(text, (err) => err && failed(err));
      } catch (err) {
        failed(err);
      }
    });
  }

  start(): void {
    if (!this.closed && !this.ws) this.connect();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = undefined;
    failAll(this.pending, "the live channel was closed");
    if (ws && ws.readyState !== WebSocket.CLOSED) ws.terminate();
  }

  private connect(): void {
    const log = this.opts.logger;
    const ws = new WebSocket(this.opts.url, {
      headers: { authorization: `Bearer ${this.opts.token}` },
      handshakeTimeout: 10_000,
      perMessageDeflate: false,
    });
    this.ws = ws;
    this.conn = ++connections;
    const pending = new Map<string, Pending>();
    this.pending = pending;
    let alive = true;
    ws.on("open", () => {
      this.backoff.reset();
      this.failures = 0;
      this.wasConnected = true;
      log.info("live channel connected");
      this.pingTimer = setInterval(() => {
        if (!alive) {
          log.warn("live channel stopped answering pings; reconnecting");
          ws.terminate();
          return;
        }
        alive = false;
        ws.ping();
      }, this.opts.pingIntervalMs ?? 30_000);
    });
    ws.on("pong", () => {
      alive = true;
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      const text = Buffer.isBuffer(data)
        ? data.toString("utf8")
        : Buffer.concat(data as Buffer[]).toString("utf8");
      const msg = parseChannelMessage(text);
      if (!msg) {
        log.debug("ignoring unknown live channel message", { message: text.slice(0, 200) });
        return;
      }
      if (msg.type === "heartbeat") return this.onReply(pending, msg.reply);
      if (msg.type === "hello") {
        log.debug("live channel greeted", { workerId: msg.workerId });
        return;
      }
      this.opts.onMessage(msg);
    });
    ws.on("error", (err) => {
      // A 'close' always follows; log here because only the error says why (refused, 401, TLS...).
      this.failures++;
      const fields = { error: describeError(err), attempt: this.failures };
      if (this.failures === 1) log.warn("live channel error; will reconnect (heartbeats continue)", fields);
      else log.debug("live channel error", fields);
    });
    ws.on("close", () => {
      failAll(pending, "the live channel closed before the reply");
      clearInterval(this.pingTimer);
      if (this.ws !== ws) return; // replaced or closed on purpose
      this.ws = undefined;
      if (this.closed) return;
      if (this.wasConnected) log.warn("live channel closed; reconnecting (heartbeats continue)");
      this.wasConnected = false;
      this.reconnectTimer = setTimeout(() => this.start(), this.backoff.next());
    });
  }

  private onReply(pending: Map<string, Pending>, reply: ChannelHeartbeatReply): void {
    if (reply.id !== null) {
      const entry = pending.get(reply.id);
      if (entry) entry.resolve(reply);
      else this.opts.logger.debug("ignoring a heartbeat reply nobody waits for", { id: reply.id });
      return;
    }
    // The control plane could not read a frame well enough to find its id: it was one of ours.
    this.opts.logger.debug("heartbeat reply without an id", { ok: reply.ok, waiting: pending.size });
    for (const entry of [...pending.values()]) entry.resolve(reply);
  }
}

function failAll(pending: Map<string, Pending>, why: string): void {
  for (const entry of [...pending.values()]) entry.reject(new ChannelRequestError("closed", why));
}
