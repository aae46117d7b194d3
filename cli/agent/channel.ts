// The live channel: a WebSocket on which the control plane pushes assignments, cancels and drain the
// moment they happen (tens of milliseconds instead of a heartbeat interval). It is an accelerator only:
// when it drops the agent reconnects with backoff and the heartbeat keeps everything correct meanwhile.
import WebSocket from "ws";
import { Backoff } from "../lib/backoff.ts";
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { type ChannelMessage, parseChannelMessage } from "./protocol.ts";

export interface ChannelOptions {
  url: string;
  token: string;
  logger: Logger;
  onMessage(msg: ChannelMessage): void;
  backoff?: { initialMs: number; maxMs: number };
  /** A ping every this often; no pong by the next one means the connection is dead. Default 30 s. */
  pingIntervalMs?: number;
}

export class LiveChannel {
  private ws: WebSocket | undefined;
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

  start(): void {
    if (!this.closed && !this.ws) this.connect();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = undefined;
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
      clearInterval(this.pingTimer);
      if (this.ws !== ws) return; // replaced or closed on purpose
      this.ws = undefined;
      if (this.closed) return;
      if (this.wasConnected) log.warn("live channel closed; reconnecting (heartbeats continue)");
      this.wasConnected = false;
      this.reconnectTimer = setTimeout(() => this.start(), this.backoff.next());
    });
  }
}
