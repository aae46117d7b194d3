// Live channel to agents: hibernatable WebSockets tagged with the worker id, so an assignment reaches a
// waiting agent in milliseconds while idle connections cost nothing. Agents also heartbeat over it: a
// frame into this object skips the Worker's request path (routing, auth, RPC), about an order of
// magnitude less CPU than POST /heartbeat, which stays as the fallback and is equally authoritative.
import { ERROR_STATUS, type ErrorCode, type Failure, type Result } from "../../errors.ts";
import { ChannelHeartbeatSchema, MAX_CHANNEL_FRAME_BYTES } from "../../protocol/heartbeat.ts";
import { fastChannelHeartbeat } from "../../protocol/heartbeat-fast.ts";

interface Attachment {
  workerId: string;
  /** The token the socket was opened with; every frame is checked against the worker's current one. */
  tokenHash: string;
}

export class WorkerChannel {
  constructor(private ctx: DurableObjectState) {
    // Keep-alives are answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
  }

  accept(workerId: string, tokenHash: string): Response {
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    // One live channel per worker: a reconnecting agent replaces its old socket.
    for (const old of this.ctx.getWebSockets(workerId)) old.close(1000, "replaced by a newer connection");
    this.ctx.acceptWebSocket(server, [workerId]);
    server.serializeAttachment({ workerId, tokenHash } satisfies Attachment);
    server.send(JSON.stringify({ type: "hello", workerId }));
    return new Response(null, { status: 101, webSocket: client });
  }

  /** True when at least one open socket took the message. */
  send(workerId: string, msg: unknown): boolean {
    let sent = false;
    const data = JSON.stringify(msg);
    for (const ws of this.ctx.getWebSockets(workerId)) {
      try {
        ws.send(data);
        sent = true;
      } catch {
        // closed under us; the heartbeat will deliver instead
      }
    }
    return sent;
  }

  /**
   * One frame from an agent. A heartbeat gets exactly one reply carrying its id: the HTTP heartbeat's
   * answer with `ok: true`, or `ok: false` with the status and code the HTTP route would have used.
   */
  async receive<B, R extends object>(
    ws: WebSocket,
    message: string | ArrayBuffer,
    heartbeat: (workerId: string, tokenHash: string, body: B) => Promise<Result<R>>,
  ): Promise<void> {
    if (message === "ping") {
      ws.send("pong");
      return;
    }
    const reply = (id: string | null, r: Result<R>) => {
      const { ok: _ok, ...rest } = r as { ok: boolean } & Record<string, unknown>;
      const out = r.ok
        ? { type: "heartbeat", id, ok: true, ...rest }
        : { type: "heartbeat", id, ok: false, ...problemOf(r) };
      try {
        ws.send(JSON.stringify(out));
      } catch {
        // The agent went away; it repeats the heartbeat over HTTP or after reconnecting.
      }
    };
    const bytes = typeof message === "string" ? utf8Length(message) : message.byteLength;
    if (bytes > MAX_CHANNEL_FRAME_BYTES) {
      const id = typeof message === "string" ? peekId(message) : null;
      return reply(
        id,
        failure("PayloadTooLarge", `frame of ${bytes} bytes; the limit is ${MAX_CHANNEL_FRAME_BYTES}`),
      );
    }
    if (typeof message !== "string") return reply(null, failure("BadRequest", "frames must be JSON text"));
    let raw: unknown;
    try {
      raw = JSON.parse(message);
    } catch {
      return reply(null, failure("MalformedJson", "the frame is not valid JSON"));
    }
    let frame = fastChannelHeartbeat(raw);
    if (!frame) {
      const parsed = ChannelHeartbeatSchema.safeParse(raw);
      if (!parsed.success) {
        const first = parsed.error.issues[0];
        const where = first?.path.length ? first.path.join(".") : "frame";
        return reply(
          idOf(raw),
          failure("ValidationFailed", `${where}: ${first?.message ?? "invalid heartbeat"}`),
        );
      }
      frame = parsed.data;
    }
    const id = frame.id;
    const att = ws.deserializeAttachment() as Attachment | null;
    if (!att)
      return reply(id, failure("Unauthorized", "this connection carries no worker identity; reconnect"));
    const { type: _t, id: _i, ...body } = frame;
    let r: Result<R>;
    try {
      r = await heartbeat(att.workerId, att.tokenHash, body as B);
    } catch (e) {
      console.error(JSON.stringify({ level: "error", msg: "channel heartbeat failed", error: String(e) }));
      r = failure("Internal", "the heartbeat could not be processed; retry");
    }
    reply(id, r);
  }
}

function failure(code: ErrorCode, message: string): Failure {
  return { ok: false, code, message };
}

function problemOf(f: Failure) {
  return { status: ERROR_STATUS[f.code], code: f.code, detail: f.message };
}

function idOf(raw: unknown): string | null {
  if (raw && typeof raw === "object" && "id" in raw) {
    const id = (raw as { id: unknown }).id;
    if (typeof id === "string" && id.length > 0 && id.length <= 64) return id;
  }
  return null;
}

/** The id of an oversized frame without parsing all of it (agents put it near the start). */
function peekId(message: string): string | null {
  const m = /"id"\s*:\s*"([^"\\]{1,64})"/.exec(message.slice(0, 256));
  return m?.[1] ?? null;
}

function utf8Length(s: string): number {
  // Cheap upper bound first: most frames are far below the limit even at 3 bytes per UTF-16 unit.
  if (s.length * 3 <= MAX_CHANNEL_FRAME_BYTES) return s.length;
  return new TextEncoder().encode(s).byteLength;
}
