// The one queue every job update goes through. Updates are sent at once as single status calls (a few in
// parallel); while the control plane is unreachable they stay here, are retried with exponential backoff
// and also ride along in each heartbeat as a batch. Per job, updates leave strictly in order ("running"
// before "succeeded") and only one of a job's updates is ever in flight. A terminal update is only removed
// when the server acknowledged or refused it, so nothing is lost while the process lives.
import { Backoff, type BackoffOptions } from "../lib/backoff.ts";
import { type Logger, silentLogger } from "../lib/log.ts";
import type { JobUpdate } from "./protocol.ts";

export type SendOutcome =
  | { kind: "ok" }
  /** Refused for good (409 StaleLease/InvalidTransition): drop it; the job's lease is no longer ours. */
  | { kind: "rejected"; code: string }
  /** Not delivered (network, 5xx, 429): keep it and try again later. */
  | { kind: "retry"; error: string; retryAfterMs?: number | undefined }
  /** The control plane no longer knows this worker (401): keep it; the agent re-registers. */
  | { kind: "unauthorized" }
  /** Undeliverable (a 4xx that retrying cannot fix): drop it, loudly. */
  | { kind: "drop"; error: string };

export interface QueuedUpdate {
  readonly update: JobUpdate;
  /** The registration (epoch) the update belongs to. */
  readonly tag: number;
  inFlight: boolean;
  removed: boolean;
}

export interface UpdateQueueOptions {
  send(update: JobUpdate, tag: number): Promise<SendOutcome>;
  /** Called once per refused update; the agent kills the job if it still runs. */
  onRejected?(update: JobUpdate, code: string): void;
  onUnauthorized?(): void;
  logger?: Logger;
  /** Parallel status calls. Default 8. */
  maxInFlight?: number;
  backoff?: BackoffOptions;
}

export class UpdateQueue {
  // Per job, its updates in order. Map iteration order gives rough FIFO across jobs.
  private readonly byJob = new Map<string, QueuedUpdate[]>();
  private count = 0;
  private inFlight = 0;
  private paused = false;
  private closed = false;
  private failing = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private readonly maxInFlight: number;
  private emptyWaiters: (() => void)[] = [];

  constructor(private readonly opts: UpdateQueueOptions) {
    this.backoff = new Backoff(opts.backoff ?? { initialMs: 250, maxMs: 10_000 });
    this.log = opts.logger ?? silentLogger;
    this.maxInFlight = opts.maxInFlight ?? 8;
  }

  /** Updates not yet acknowledged (including those in flight). */
  get size(): number {
    return this.count;
  }

  /** Whether any update of this job is still waiting or in flight. */
  has(jobId: string): boolean {
    return this.byJob.has(jobId);
  }

  /** True after a failed delivery until the next success: the control plane looks unreachable. */
  get isFailing(): boolean {
    return this.failing;
  }

  push(update: JobUpdate, tag: number): void {
    if (this.closed) return;
    const entry: QueuedUpdate = { update, tag, inFlight: false, removed: false };
    const list = this.byJob.get(update.jobId);
    if (list) list.push(entry);
    else this.byJob.set(update.jobId, [entry]);
    this.count++;
    this.pump();
  }

  /** Stops status calls (during re-registration); updates keep queueing. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  /**
   * Takes pending updates for a heartbeat and marks them in flight. Jobs with a status call in flight are
   * skipped whole, so a job's updates never overtake each other. Bounded by count and by log-tail bytes.
   */
  takeBatch(maxUpdates = 256, maxBytes = 4 * 1024 * 1024): QueuedUpdate[] {
    return this.take(maxUpdates, maxBytes).entries;
  }

  /**
   * takeBatch, also telling whether it stopped at a limit with updates left behind (`more`): the next
   * heartbeat should then follow at once. The byte count is an estimate (string lengths, not JSON bytes).
   */
  take(maxUpdates: number, maxBytes: number): { entries: QueuedUpdate[]; more: boolean } {
    const batch: QueuedUpdate[] = [];
    let bytes = 0;
    for (const list of this.byJob.values()) {
      if (list[0]!.inFlight) continue;
      for (const entry of list) {
        const size = 200 + (entry.update.logTail?.length ?? 0) + (entry.update.message?.length ?? 0);
        if (batch.length > 0 && (batch.length >= maxUpdates || bytes + size > maxBytes))
          return { entries: batch, more: true };
        entry.inFlight = true;
        batch.push(entry);
        bytes += size;
      }
    }
    return { entries: batch, more: false };
  }

  /** The heartbeat carrying `batch` succeeded: everything not in `rejected` is acknowledged. */
  settleBatch(batch: QueuedUpdate[], rejected: { jobId: string; code: string }[]): void {
    const codes = new Map(rejected.map((r) => [r.jobId, r.code]));
    const told = new Set<string>();
    for (const entry of batch) {
      if (entry.removed) continue;
      const code = codes.get(entry.update.jobId);
      if (code === undefined) {
        this.remove(entry);
      } else if (!told.has(entry.update.jobId)) {
        told.add(entry.update.jobId);
        this.reject(entry, code);
      }
    }
    this.succeeded();
    this.pump();
  }

  /** The heartbeat carrying `batch` failed: the updates go back to pending. */
  releaseBatch(batch: QueuedUpdate[]): void {
    for (const entry of batch) entry.inFlight = false;
    this.pump();
  }

  /** Drops updates (e.g. of an old registration). In-flight ones are ignored when their answer comes. */
  dropWhere(pred: (entry: QueuedUpdate) => boolean): number {
    let dropped = 0;
    for (const list of [...this.byJob.values()]) {
      for (const entry of [...list]) {
        if (pred(entry)) {
          this.remove(entry);
          dropped++;
        }
      }
    }
    return dropped;
  }

  /** The control plane answered something else (e.g. a heartbeat): stop backing off. */
  markReachable(): void {
    if (this.failing) this.succeeded();
    this.pump();
  }

  /** Resolves when no update is left (acknowledged, refused or dropped). */
  whenEmpty(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((r) => this.emptyWaiters.push(r));
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  // Sends as many heads of job chains as the in-flight limit allows. After a failure only one probe is
  // in flight at a time, and only when the backoff timer has fired.
  private pump(): void {
    if (this.paused || this.closed || this.retryTimer) return;
    const limit = this.failing ? 1 : this.maxInFlight;
    if (this.inFlight >= limit) return;
    for (const list of this.byJob.values()) {
      const head = list[0]!;
      if (head.inFlight) continue;
      this.sendOne(head);
      if (this.inFlight >= limit) return;
    }
  }

  private sendOne(entry: QueuedUpdate): void {
    entry.inFlight = true;
    this.inFlight++;
    this.opts
      .send(entry.update, entry.tag)
      .catch((err): SendOutcome => ({ kind: "retry", error: String(err) }))
      .then((outcome) => {
        this.inFlight--;
        this.handle(entry, outcome);
        this.pump();
      });
  }

  private handle(entry: QueuedUpdate, outcome: SendOutcome): void {
    if (entry.removed) return; // dropped while in flight (re-registration)
    const { jobId, state } = entry.update;
    switch (outcome.kind) {
      case "ok":
        this.remove(entry);
        this.succeeded();
        return;
      case "rejected":
        this.reject(entry, outcome.code);
        this.succeeded();
        return;
      case "drop":
        this.log.error("control plane refused a job update; dropping it", {
          jobId,
          state,
          error: outcome.error,
        });
        this.remove(entry);
        return;
      case "unauthorized":
        // Hold everything until the agent has re-registered (it calls resume()); resending now would
        // only collect more 401s.
        entry.inFlight = false;
        this.paused = true;
        this.opts.onUnauthorized?.();
        return;
      case "retry": {
        entry.inFlight = false;
        const delay = Math.max(outcome.retryAfterMs ?? 0, this.backoff.next());
        if (!this.failing) {
          this.log.warn("cannot deliver job updates; keeping them and retrying", {
            error: outcome.error,
            pending: this.count,
            retryInMs: delay,
          });
        }
        this.failing = true;
        if (!this.retryTimer && !this.closed) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.pump();
          }, delay);
        }
        return;
      }
    }
  }

  private reject(entry: QueuedUpdate, code: string): void {
    // Later updates for the same lease are stale too.
    const { jobId, lease } = entry.update;
    for (const e of [...(this.byJob.get(jobId) ?? [])]) if (e.update.lease === lease) this.remove(e);
    this.opts.onRejected?.(entry.update, code);
  }

  private succeeded(): void {
    if (this.failing) this.log.info("job updates are being delivered again", { pending: this.count });
    this.failing = false;
    this.backoff.reset();
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
  }

  private remove(entry: QueuedUpdate): void {
    if (entry.removed) return;
    entry.removed = true;
    const list = this.byJob.get(entry.update.jobId);
    if (list) {
      const i = list.indexOf(entry);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byJob.delete(entry.update.jobId);
    }
    this.count--;
    if (this.count === 0) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const w of waiters) w();
    }
  }
}
