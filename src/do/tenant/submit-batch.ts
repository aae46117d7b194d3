// Group commit for submits. Concurrent submits to one tenant arrive as separate RPC events; each used to be
// its own SQLite transaction with its own settings write, outbox row, demand bump and alarm check. Here the
// submits that arrived together are applied one after another inside ONE transaction, so those fixed costs
// are paid once per batch (bench/analysis.md: they were most of the object's share of a submit).
//
// Semantics are unchanged: submits still run in arrival order, each sees the writes of the ones before it
// (so an Idempotency-Key repeated within a batch still creates one job), and no caller is answered before
// the transaction holding its job has committed.
import type { Result } from "../../errors.ts";
import type { KeyPrincipal } from "./catalog.ts";
import type { TenantCtx } from "./context.ts";
import { type SubmitOk, type SubmitRequest, submit } from "./submit.ts";

interface Waiting {
  who: KeyPrincipal;
  req: SubmitRequest;
  resolve: (r: Result<SubmitOk>) => void;
  reject: (e: unknown) => void;
}

class Thrown {
  constructor(readonly error: unknown) {}
}

/** A batch larger than this is split: one transaction must not hold the object for long. */
export const MAX_BATCH_JOBS = 500;

export class SubmitBatcher {
  private waiting: Waiting[] = [];
  /** Batches committed and submits they carried, for the metrics endpoint and the benchmarks. */
  readonly stats = { batches: 0, submits: 0 };

  constructor(
    private ctx: TenantCtx,
    /** Runs once per batch after its commit (alarm planning, live event fan-out). */
    private afterCommit: () => Promise<void>,
  ) {}

  submit(who: KeyPrincipal, req: SubmitRequest): Promise<Result<SubmitOk>> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ who, req, resolve, reject });
      // A zero-delay timer runs after the events already queued for this object (the other submits that
      // arrived meanwhile), so it collects them; under no load the batch is this one submit.
      if (this.waiting.length === 1) setTimeout(() => void this.flush(), 0);
    });
  }

  private async flush(): Promise<void> {
    const batch = this.take();
    // More than one batch's worth waiting: the rest goes in its own transaction, after other events.
    if (this.waiting.length > 0) setTimeout(() => void this.flush(), 0);
    let results: (Result<SubmitOk> | Thrown)[];
    try {
      results = this.ctx.tx(() => batch.map((w) => submit(this.ctx, w.who, w.req)));
    } catch {
      // Something threw mid-batch and rolled all of it back. Redo each submit in its own transaction so
      // that only the one at fault fails (nothing of the batch was written, so nothing is applied twice).
      results = batch.map((w) => {
        try {
          return this.ctx.tx(() => submit(this.ctx, w.who, w.req));
        } catch (error) {
          return new Thrown(error);
        }
      });
    }
    this.stats.batches++;
    this.stats.submits += batch.length;
    try {
      await this.afterCommit();
    } catch (error) {
      for (const w of batch) w.reject(error);
      return;
    }
    batch.forEach((w, i) => {
      const r = results[i]!;
      if (r instanceof Thrown) w.reject(r.error);
      else w.resolve(r);
    });
  }

  /** The oldest waiting submits, up to MAX_BATCH_JOBS jobs (an array counts its tasks; one always fits). */
  private take(): Waiting[] {
    let jobs = 0;
    let n = 0;
    while (n < this.waiting.length) {
      const size = Math.max(1, this.waiting[n]!.req.job.array?.size ?? 1);
      if (n > 0 && jobs + size > MAX_BATCH_JOBS) break;
      jobs += size;
      n++;
    }
    return this.waiting.splice(0, n);
  }
}
