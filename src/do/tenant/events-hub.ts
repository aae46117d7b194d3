// The tenant's live event stream: every job transition, in order, to hibernatable WebSockets and to
// Server-Sent Events streams. Events are numbered by the tenant's event sequence, so a client that
// reconnects with the last id it saw gets everything after it from the events table, then the live tail.
// Transitions are queued during a transaction and sent after it commits.
import { priorityName } from "../../domain/job.ts";
import type { EventRecord } from "../../lib/history.ts";
import { all } from "../../lib/sql.ts";
import { eventRecord, type JobRow, parseSpec } from "./job-row.ts";

export interface StreamEvent {
  seq: number;
  jobId: string;
  at: string;
  from: string | null;
  to: string;
  reason: string | null;
  message: string | null;
  attempt: number;
  lease: number | null;
  workerId: string | null;
  exitCode: number | null;
  job: {
    name: string;
    user: string;
    priority: string;
    gpus: number;
    gpuType: string | null;
    arrayId: string | null;
  };
}

interface SseClient {
  writer: WritableStreamDefaultWriter<Uint8Array>;
  job: string | null;
}

const TAG = "events";
const REPLAY_LIMIT = 10_000;
const enc = new TextEncoder();

export class EventsHub {
  private pending: StreamEvent[] = [];
  private sse = new Set<SseClient>();
  private keepAlive: ReturnType<typeof setInterval> | null = null;

  constructor(
    private ctx: DurableObjectState,
    private sql: SqlStorage,
    private tenantId: () => string,
    /** The newest event id ever issued (the meta counter: max(seq) goes back when retention prunes). */
    private newestSeq: () => number,
  ) {}

  /**
   * Called for every transition inside the transaction; sent by flush() once it committed. The event is
   * built only when somebody listens (most transitions have no audience).
   */
  queue(build: () => StreamEvent): void {
    if (this.hasSubscribers()) this.pending.push(build());
  }

  hasSubscribers(): boolean {
    return this.sse.size > 0 || this.ctx.getWebSockets(TAG).length > 0;
  }

  flush(): void {
    if (this.pending.length === 0) return;
    const events = this.pending;
    this.pending = [];
    for (const ws of this.ctx.getWebSockets(TAG)) {
      const job = (ws.deserializeAttachment() as { job: string | null } | null)?.job ?? null;
      for (const e of events) {
        if (job && e.jobId !== job) continue;
        try {
          ws.send(JSON.stringify({ type: "event", ...e }));
        } catch {
          // closing; the client resumes from its last id
        }
      }
    }
    for (const c of this.sse)
      for (const e of events) if (!c.job || e.jobId === c.job) this.write(c, sseFrame(e));
  }

  /** Everything after `afterSeq` (optionally one job's), oldest first, from the events table. */
  replay(afterSeq: number, job: string | null, limit = REPLAY_LIMIT): StreamEvent[] {
    return this.replayPage(afterSeq, job, limit).items;
  }

  /** Up to `limit` events after `afterSeq`, and whether more follow them. */
  private replayPage(afterSeq: number, job: string | null, limit: number) {
    const rows = all<Record<string, SqlStorageValue>>(
      this.sql,
      `SELECT e.*, j.spec, j.user, j.priority, j.gpus, j.array_id FROM events e LEFT JOIN jobs j ON j.id = e.job_id
       WHERE e.seq > ? ${job ? "AND e.job_id = ?" : ""} ORDER BY e.seq LIMIT ${Math.min(limit, REPLAY_LIMIT) + 1}`,
      ...(job ? [afterSeq, job] : [afterSeq]),
    );
    const more = rows.length > Math.min(limit, REPLAY_LIMIT);
    if (more) rows.pop();
    const items = rows.map((r) => {
      const spec = r.spec ? (JSON.parse(r.spec as string) as { name: string; gpuType: string | null }) : null;
      // The job's columns are NULL when retention already deleted it.
      return EventsHub.fromRecord(eventRecord(r, this.tenantId()), {
        name: spec?.name ?? "",
        user: (r.user as string) ?? "",
        priority: ["low", "normal", "high"][(r.priority as number) ?? 1] ?? "normal",
        gpus: (r.gpus as number) ?? 0,
        gpuType: spec?.gpuType ?? null,
        arrayId: (r.array_id as string | null) ?? null,
      });
    });
    return { items, more };
  }

  acceptWebSocket(afterSeq: number | null, job: string | null): Response {
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [TAG]);
    server.serializeAttachment({ job });
    server.send(JSON.stringify({ type: "hello", tenantId: this.tenantId() }));
    if (afterSeq !== null) {
      const page = this.replayPage(afterSeq, job, REPLAY_LIMIT);
      for (const e of page.items) server.send(JSON.stringify({ type: "event", ...e }));
      if (page.more) {
        // Live events would follow a hole: the client reconnects from the last event it got instead.
        const after = page.items[page.items.length - 1]!.seq;
        server.send(JSON.stringify({ type: "more", after }));
        server.close(4000, `replay limit reached: reconnect with after=${after}`);
      }
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  /** The newest event id: a subscriber starting "from now" resumes from here if it reconnects. */
  latestSeq(): number {
    return this.newestSeq();
  }

  openSse(afterSeq: number | null, job: string | null): Response {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const c: SseClient = { writer: writable.getWriter(), job };
    // The opening frame carries the current id, so even a client that sees no event before it reconnects
    // resumes exactly where it started.
    const start = afterSeq ?? this.latestSeq();
    this.write(c, enc.encode(`retry: 2000\nid: ${start}\n: gantry events for tenant ${this.tenantId()}\n\n`));
    if (afterSeq !== null) {
      const page = this.replayPage(afterSeq, job, REPLAY_LIMIT);
      for (const e of page.items) this.write(c, sseFrame(e));
      if (page.more) {
        // Live events would follow a hole: end the stream, and the client's reconnect (Last-Event-ID =
        // the last frame above) fetches the next page. EventSource and both our clients do that.
        c.writer.close().catch(() => {});
        return sseResponse(readable);
      }
    }
    this.sse.add(c);
    // Comments keep proxies from closing an idle stream.
    this.keepAlive ??= setInterval(() => {
      for (const x of this.sse) this.write(x, enc.encode(": keep-alive\n\n"));
      if (this.sse.size === 0 && this.keepAlive) {
        clearInterval(this.keepAlive);
        this.keepAlive = null;
      }
    }, 15_000);
    return sseResponse(readable);
  }

  private write(c: SseClient, bytes: Uint8Array): void {
    c.writer.write(bytes).catch(() => {
      this.sse.delete(c);
      c.writer.abort().catch(() => {});
    });
  }

  /** A job's transition as the stream carries it: the event with the job's name, owner and shape. */
  static ofJob(job: JobRow, ev: EventRecord): StreamEvent {
    const spec = parseSpec(job);
    return EventsHub.fromRecord(ev, {
      name: spec.name,
      user: job.user,
      priority: priorityName(job.priority),
      gpus: job.gpus,
      gpuType: spec.gpuType,
      arrayId: job.array_id,
    });
  }

  static fromRecord(ev: EventRecord, job: StreamEvent["job"]): StreamEvent {
    return {
      seq: ev.seq,
      jobId: ev.jobId,
      at: new Date(ev.at).toISOString(),
      from: ev.fromState,
      to: ev.toState,
      reason: ev.reason,
      message: ev.message,
      attempt: ev.attempt,
      lease: ev.lease,
      workerId: ev.workerId,
      exitCode: ev.exitCode,
      job,
    };
  }
}

function sseResponse(body: ReadableStream<Uint8Array>): Response {
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    },
  });
}

function sseFrame(e: StreamEvent): Uint8Array {
  return enc.encode(`id: ${e.seq}\nevent: job\ndata: ${JSON.stringify(e)}\n\n`);
}
