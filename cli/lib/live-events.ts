// The tenant's live job transitions (GET /v1/events) as an async iterable for --wait, --watch and --follow.
// Server-Sent Events first: on a dropped or silent stream it reconnects with Last-Event-ID so nothing is
// missed or repeated; when streaming keeps failing (a proxy that buffers or strips text/event-stream) it
// falls back to polling the JSON page (?after=SEQ). Events are de-duplicated by their sequence number.
import type { Api } from "./api.ts";
import { Backoff, sleep } from "./backoff.ts";
import { describeError } from "./errors.ts";
import { ApiError } from "./http.ts";
import { SseParser } from "./sse.ts";

export interface LiveEvent {
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
  job?: {
    name: string;
    user: string;
    priority: string;
    gpus: number;
    gpuType: string | null;
    arrayId: string | null;
  };
}

export type Transport = "auto" | "sse" | "poll";

export interface FeedOptions {
  /** Only this job's transitions. */
  job?: string;
  /** Replay every event after this id first; undefined means from now on. */
  after?: number;
  signal: AbortSignal;
  /** Progress and warnings for people (stderr). */
  warn?: (message: string) => void;
  /** "auto" (default): SSE, polling when SSE keeps failing. GANTRY_EVENTS=poll|sse forces one. */
  transport?: Transport;
  pollIntervalMs?: number;
  /** A stream that sends nothing for this long (the server's keep-alive is every 15 s) is reopened. */
  idleTimeoutMs?: number;
  /** Failed streams in a row before falling back to polling. */
  maxStreamFailures?: number;
  /**
   * Failed attempts before the feed first listens that end it with the error: a control plane that is
   * down from the start is reported (exit 6), not waited for; once listening, outages are retried.
   */
  maxAttemptsBeforeReady?: number;
}

const PAGE = 1000;

/** Not retryable: the key, its role or the job is wrong, and asking again will not change that. */
function isFatal(err: unknown): boolean {
  return err instanceof ApiError && err.status >= 400 && err.status < 500 && ![408, 429].includes(err.status);
}

/** The server's newest event id when it refused our resume point as past it (400 with latestEventId). */
function aheadOfServer(err: unknown): number | null {
  if (!(err instanceof ApiError) || err.status !== 400) return null;
  const n = err.problem.latestEventId;
  return typeof n === "number" ? n : null;
}

class NotAStream extends Error {}

export class EventFeed implements AsyncIterable<LiveEvent> {
  /** Resolves once the feed listens (stream open, or polling caught up): later events will arrive. */
  readonly ready: Promise<void>;
  private queue: LiveEvent[] = [];
  private wake: (() => void) | null = null;
  private failure: unknown = null;
  private finished = false;
  private last: number | undefined;
  private listening = false;
  private markReady!: () => void;
  private failReady!: (err: unknown) => void;

  constructor(
    private readonly api: Api,
    private readonly o: FeedOptions,
  ) {
    this.last = o.after;
    this.ready = new Promise<void>((resolve, reject) => {
      this.markReady = () => {
        this.listening = true;
        resolve();
      };
      this.failReady = reject;
    });
    this.ready.catch(() => {}); // surfaced through the iterator as well
    void this.loop()
      .catch((err: unknown) => {
        this.failure = err;
        this.failReady(err);
      })
      .finally(() => {
        this.finished = true;
        this.markReady();
        this.wake?.();
      });
  }

  /** The id of the last event delivered (resume point). */
  get lastEventId(): number | undefined {
    return this.last;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<LiveEvent> {
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.finished) return;
      await new Promise<void>((r) => {
        this.wake = r;
      });
      this.wake = null;
    }
  }

  private accept(ev: LiveEvent): void {
    if (typeof ev?.seq !== "number" || typeof ev.jobId !== "string") return;
    if (this.last !== undefined && ev.seq <= this.last) return;
    this.last = ev.seq;
    this.queue.push(ev);
    this.wake?.();
  }

  private async loop(): Promise<void> {
    const { signal } = this.o;
    const warn = this.o.warn ?? (() => {});
    const maxFailures = this.o.maxStreamFailures ?? 3;
    const backoff = new Backoff({ initialMs: 500, maxMs: 10_000 });
    let mode: "sse" | "poll" = this.o.transport === "poll" ? "poll" : "sse";
    let failures = 0;
    let attemptsBeforeReady = 0;
    while (!signal.aborted) {
      try {
        if (mode === "sse") {
          const healthy = await this.streamOnce();
          failures = healthy ? 0 : failures + 1;
          if (healthy) backoff.reset();
        } else {
          await this.pollUntilError();
        }
      } catch (err) {
        if (signal.aborted) return;
        const newest = aheadOfServer(err);
        if (newest !== null && this.last !== undefined) {
          // Our resume point is past every id the server issued (its data was reset): nothing would ever
          // arrive after it. Go on from its newest id and say so; the caller's refresh covers the rest.
          warn(`the server's event ids end at ${newest}, before ours (${this.last}); following from there`);
          this.last = newest;
          continue;
        }
        if (isFatal(err)) throw err;
        const neverListened = !this.listening && !(err instanceof NotAStream);
        if (neverListened && ++attemptsBeforeReady >= (this.o.maxAttemptsBeforeReady ?? 3)) throw err;
        failures++;
        if (mode === "sse") warn(`event stream interrupted (${describeError(err)}); reconnecting`);
        else warn(`polling events failed (${describeError(err)}); retrying`);
        if (err instanceof NotAStream) failures = maxFailures;
      }
      if (mode === "sse" && this.o.transport !== "sse" && failures >= maxFailures) {
        warn("live event stream unavailable; polling for events instead");
        mode = "poll";
        failures = 0;
        backoff.reset();
        continue;
      }
      if (failures > 0) await sleep(backoff.next(), signal);
    }
  }

  /** One SSE connection until it ends; true when it was healthy (delivered an event or lived 10 s). */
  private async streamOnce(): Promise<boolean> {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    this.o.signal.addEventListener("abort", onAbort, { once: true });
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(
        () => ctl.abort(new Error("no data from the event stream")),
        this.o.idleTimeoutMs ?? 45_000,
      );
    };
    const opened = Date.now();
    let delivered = false;
    try {
      const headers: Record<string, string> = { accept: "text/event-stream" };
      if (this.last !== undefined) headers["last-event-id"] = String(this.last);
      const res = await this.api.openStream(
        "/v1/events",
        { job: this.o.job, after: this.last },
        headers,
        ctl.signal,
      );
      if (!(res.headers.get("content-type") ?? "").includes("text/event-stream") || !res.body) {
        await res.body?.cancel().catch(() => {});
        throw new NotAStream(`the server answered ${res.headers.get("content-type") ?? "no content type"}`);
      }
      this.markReady();
      arm();
      const parser = new SseParser();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        for (const ev of parser.push(value)) {
          if (ev.event !== "job") continue;
          try {
            this.accept(JSON.parse(ev.data) as LiveEvent);
            delivered = true;
          } catch {
            // a malformed frame is skipped; the next one carries on
          }
        }
      }
      return delivered || Date.now() - opened >= 10_000;
    } catch (err) {
      // Our own idle abort surfaces as an AbortError; report the reason instead.
      if (ctl.signal.aborted && !this.o.signal.aborted && ctl.signal.reason instanceof Error) {
        throw ctl.signal.reason;
      }
      if (delivered && !isFatal(err)) return true;
      throw err;
    } finally {
      clearTimeout(idle);
      this.o.signal.removeEventListener("abort", onAbort);
      ctl.abort();
    }
  }

  /** JSON pages of events after the last id, every pollIntervalMs, until an error or the abort. */
  private async pollUntilError(): Promise<void> {
    const { signal } = this.o;
    if (this.last === undefined) {
      // "From now on": the newest id, without reading the history before it.
      this.last = (await this.page("latest")).lastEventId ?? 0;
    }
    this.markReady();
    while (!signal.aborted) {
      const page = await this.page(this.last ?? 0);
      for (const ev of page.items) this.accept(ev);
      if (page.items.length < PAGE && !(await sleep(this.o.pollIntervalMs ?? 1000, signal))) return;
    }
  }

  private page(after: number | "latest") {
    return this.api.get<{ items: LiveEvent[]; lastEventId: number | null }>(
      "/v1/events",
      { after, job: this.o.job, limit: PAGE },
      this.o.signal,
    );
  }
}

export function transportFromEnv(env: NodeJS.ProcessEnv = process.env): Transport {
  const v = env.GANTRY_EVENTS;
  return v === "sse" || v === "poll" ? v : "auto";
}
