// A small in-process stand-in for the control plane's worker API (HTTP + WebSocket), for unit tests of
// the agent's protocol handling. It records every request and lets each test script the answers. It is
// not the real server: the lead's integration tests run the agent against that. Heartbeats arrive over
// HTTP or as live-channel frames ({"type":"heartbeat","id",...} answered by one reply with the same id);
// both are handled alike and recorded in `heartbeats` with the path they took.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";

export interface Recorded {
  method: string;
  path: string;
  auth: string | undefined;
  body: Record<string, unknown>;
  at: number;
}

export interface StatusRecord {
  workerId: string;
  jobId: string;
  via: "status" | "heartbeat";
  /** For updates that came in a heartbeat: which path it took. */
  transport?: HeartbeatPath;
  body: Record<string, unknown>;
  at: number;
}

export type HeartbeatPath = "http" | "channel";

export interface HeartbeatRecord {
  workerId: string;
  via: HeartbeatPath;
  /** The heartbeat body (for channel frames without `type` and `id`). */
  body: Record<string, unknown>;
  /** Channel frames: the frame's id and size in bytes. */
  id?: string;
  bytes?: number;
  /** The status answered (200 = applied), or what a script did instead of answering. */
  outcome: number | "ignored" | "unanswered" | "closed";
  at: number;
}

/**
 * What a test's onChannelHeartbeat may do with a channel heartbeat instead of the default handling:
 * "ignore" it (not applied, never answered, as a control plane that predates channel heartbeats),
 * apply it but send "noreply", "close" the socket without applying or answering, or answer with a Reply
 * (status >= 400 becomes ok:false with the problem's code and detail).
 */
export type ChannelScript = Reply | "ignore" | "noreply" | "close";

/** The largest frame the control plane reads (1 MiB). */
export const MAX_FRAME_BYTES = 1024 * 1024;

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Handler<A extends unknown[]> = (...args: A) => Reply | undefined;

export class FakeControlPlane {
  joinToken = "join-secret-123";
  heartbeatIntervalSeconds = 30;
  leaseTtlSeconds = 90;
  readonly requests: Recorded[] = [];
  readonly statuses: StatusRecord[] = [];
  readonly workers = new Map<string, { token: string; registration: Record<string, unknown> }>();
  readonly sockets = new Map<string, Set<WebSocket>>();
  readonly wsAuth: (string | undefined)[] = [];
  readonly heartbeats: HeartbeatRecord[] = [];
  /** Every text frame an agent sent on the live channel, in bytes. */
  readonly frameBytes: number[] = [];
  /** False: heartbeat frames are ignored (a control plane from before channel heartbeats). */
  channelHeartbeats = true;
  /** True: live-channel connections are refused (503), as when the channel path is down. */
  refuseChannels = false;
  /** Delivered with (and cleared by) the next heartbeat of that worker. */
  readonly nextHeartbeat = new Map<
    string,
    { assignments?: unknown[]; cancel?: string[]; rejected?: unknown[] }
  >();
  drain = false;
  /** Overrides; return undefined for the default behaviour. */
  onStatus: Handler<[workerId: string, jobId: string, body: Record<string, unknown>]> | undefined;
  onHeartbeat: Handler<[workerId: string, body: Record<string, unknown>]> | undefined;
  onRegister: Handler<[body: Record<string, unknown>]> | undefined;
  /** Channel heartbeats only, checked before onHeartbeat; undefined for the default behaviour. */
  onChannelHeartbeat:
    | ((workerId: string, frame: Record<string, unknown>) => ChannelScript | undefined)
    | undefined;
  private nextId = 1;
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  url = "";

  async start(port = 0): Promise<this> {
    this.wss = new WebSocketServer({ noServer: true });
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on("upgrade", (req, socket, head) => {
      const m = /^\/v1\/workers\/([^/]+)\/connect$/.exec(req.url ?? "");
      const worker = m ? this.workers.get(decodeURIComponent(m[1]!)) : undefined;
      this.wsAuth.push(req.headers.authorization);
      if (this.refuseChannels) {
        socket.end("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      if (!m || !worker || req.headers.authorization !== `Bearer ${worker.token}`) {
        socket.end("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      const token = worker.token;
      this.wss!.handleUpgrade(req, socket, head, (ws) => {
        const id = decodeURIComponent(m[1]!);
        const set = this.sockets.get(id) ?? new Set();
        set.add(ws);
        this.sockets.set(id, set);
        ws.on("close", () => set.delete(ws));
        ws.on("message", (data, isBinary) => {
          if (!isBinary) this.onFrame(ws, id, token, Buffer.from(data as Buffer));
        });
      });
    });
    await new Promise<void>((r) => this.server!.listen(port, "127.0.0.1", () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const set of this.sockets.values()) for (const ws of set) ws.terminate();
    this.wss?.close();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Sends a live-channel message to every open socket of the worker; false if none is open. */
  push(workerId: string, msg: unknown): boolean {
    const set = this.sockets.get(workerId);
    if (!set || set.size === 0) return false;
    for (const ws of set) ws.send(JSON.stringify(msg));
    return true;
  }

  connected(workerId: string): boolean {
    return (this.sockets.get(workerId)?.size ?? 0) > 0;
  }

  /** Drops the worker's live-channel connections (the agent reconnects unless refuseChannels). */
  disconnect(workerId: string): void {
    for (const ws of this.sockets.get(workerId) ?? []) ws.terminate();
  }

  /** Forgets a worker: its token stops working (heartbeat → 404). */
  forget(workerId: string): void {
    this.workers.delete(workerId);
    for (const ws of this.sockets.get(workerId) ?? []) ws.terminate();
  }

  requestsTo(suffix: string): Recorded[] {
    return this.requests.filter((r) => r.path.endsWith(suffix));
  }

  heartbeatsVia(via: HeartbeatPath): HeartbeatRecord[] {
    return this.heartbeats.filter((h) => h.via === via);
  }

  statusesOf(jobId: string): StatusRecord[] {
    return this.statuses.filter((s) => s.jobId === jobId);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
    const path = req.url ?? "";
    const auth = req.headers.authorization;
    this.requests.push({ method: req.method ?? "", path, auth, body, at: Date.now() });
    send(res, this.route(path, auth, body));
  }

  private route(path: string, auth: string | undefined, body: Record<string, unknown>): Reply {
    if (path === "/v1/workers/register") {
      const custom = this.onRegister?.(body);
      if (custom) return custom;
      if (auth !== `Bearer ${this.joinToken}`)
        return problem(401, "Unauthorized", "unknown join token", "InvalidToken");
      const workerId = `w-${this.nextId++}`;
      const token = `worker-token-${workerId}-secret`;
      this.workers.set(workerId, { token, registration: body });
      return {
        status: 201,
        body: {
          workerId,
          token,
          heartbeatIntervalSeconds: this.heartbeatIntervalSeconds,
          leaseTtlSeconds: this.leaseTtlSeconds,
          poolId: "default",
        },
      };
    }
    const m = /^\/v1\/workers\/([^/]+)\/(heartbeat|drain|deregister|jobs\/([^/]+)\/status)$/.exec(path);
    if (!m) return problem(404, "Not Found", `no route ${path}`, "NotFound");
    const workerId = decodeURIComponent(m[1]!);
    const worker = this.workers.get(workerId);
    if (!worker) return problem(404, "Not Found", `worker ${workerId} not found`, "WorkerNotFound");
    if (auth !== `Bearer ${worker.token}`)
      return problem(401, "Unauthorized", "bad worker token", "InvalidToken");
    if (m[2] === "heartbeat") {
      const reply = this.heartbeat(workerId, body, "http");
      this.heartbeats.push({ workerId, via: "http", body, outcome: reply.status, at: Date.now() });
      return reply;
    }
    if (m[3] !== undefined) {
      const jobId = decodeURIComponent(m[3]);
      const custom = this.onStatus?.(workerId, jobId, body);
      if (custom) return custom;
      this.statuses.push({ workerId, jobId, via: "status", body, at: Date.now() });
      return { status: 200, body: { ok: true } };
    }
    if (m[2] === "deregister") this.workers.delete(workerId);
    return { status: 200, body: {} };
  }

  /** A heartbeat, whichever way it came: applies its updates and answers like the real control plane. */
  private heartbeat(workerId: string, body: Record<string, unknown>, via: HeartbeatPath): Reply {
    const custom = this.onHeartbeat?.(workerId, body);
    if (custom) return custom;
    for (const u of (body.updates as Record<string, unknown>[] | undefined) ?? []) {
      const jobId = String(u.jobId);
      this.statuses.push({ workerId, jobId, via: "heartbeat", transport: via, body: u, at: Date.now() });
    }
    const next = this.nextHeartbeat.get(workerId) ?? {};
    this.nextHeartbeat.delete(workerId);
    return {
      status: 200,
      body: {
        assignments: next.assignments ?? [],
        cancel: next.cancel ?? [],
        drain: this.drain,
        rejected: next.rejected ?? [],
      },
    };
  }

  /** A text frame from an agent: heartbeats get exactly one reply (unless a script says otherwise). */
  private onFrame(ws: WebSocket, workerId: string, token: string, data: Buffer): void {
    this.frameBytes.push(data.length);
    if (!this.channelHeartbeats) return;
    const answer = (id: string | null, reply: Reply) => {
      const b = (reply.body ?? {}) as Record<string, unknown>;
      const out =
        reply.status < 400
          ? { type: "heartbeat", id, ok: true, ...b }
          : { type: "heartbeat", id, ok: false, status: reply.status, code: b.code, detail: b.detail };
      ws.send(JSON.stringify(out));
    };
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(data.toString("utf8")) as Record<string, unknown>;
    } catch {
      answer(null, problem(400, "Bad Request", "the frame is not JSON", "MalformedJson"));
      return;
    }
    if (frame.type !== "heartbeat") return;
    const id = typeof frame.id === "string" ? frame.id : null;
    const { type: _type, id: _id, ...body } = frame;
    const record = (outcome: HeartbeatRecord["outcome"]) =>
      this.heartbeats.push({
        workerId,
        via: "channel",
        body,
        ...(id !== null ? { id } : {}),
        bytes: data.length,
        outcome,
        at: Date.now(),
      });
    if (data.length > MAX_FRAME_BYTES) {
      record(413);
      answer(id, problem(413, "Payload Too Large", `frame of ${data.length} bytes`, "PayloadTooLarge"));
      return;
    }
    const worker = this.workers.get(workerId);
    const gone = !worker
      ? problem(404, "Not Found", `worker ${workerId} not found`, "NotFound")
      : worker.token !== token
        ? problem(401, "Unauthorized", "bad worker token", "Unauthorized")
        : undefined;
    const script = gone ?? this.onChannelHeartbeat?.(workerId, frame);
    if (script === "ignore") return void record("ignored");
    if (script === "close") {
      record("closed");
      ws.terminate();
      return;
    }
    const reply =
      script === undefined || script === "noreply" ? this.heartbeat(workerId, body, "channel") : script;
    record(script === "noreply" ? "unanswered" : reply.status);
    if (script !== "noreply") answer(id, reply);
  }
}

export function problem(status: number, title: string, detail: string, code: string): Reply {
  return { status, body: { type: `https://gantry.dev/problems/${code}`, title, status, detail, code } };
}

function send(res: ServerResponse, reply: Reply): void {
  const isProblem = reply.status >= 400;
  res.writeHead(reply.status, {
    "content-type": isProblem ? "application/problem+json" : "application/json",
    ...reply.headers,
  });
  res.end(reply.body === undefined ? "" : JSON.stringify(reply.body));
}

/** Polls `cond` until true; fails with `what` after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function assignment(
  jobId: string,
  command: string[],
  extra: {
    lease?: number;
    gpuIndices?: number[];
    env?: Record<string, string>;
    maxRuntimeSeconds?: number;
    arrayIndex?: number;
  } = {},
) {
  return {
    jobId,
    lease: extra.lease ?? 1,
    gpuIndices: extra.gpuIndices ?? [0],
    spec: {
      name: jobId,
      command,
      env: extra.env ?? {},
      attempt: 1,
      ...(extra.maxRuntimeSeconds !== undefined ? { maxRuntimeSeconds: extra.maxRuntimeSeconds } : {}),
      ...(extra.arrayIndex !== undefined ? { arrayIndex: extra.arrayIndex } : {}),
    },
  };
}
