// A tenant's Durable Object: the source of truth for the tenant's live jobs (queue, job state, quota
// ledger, idempotency keys). Thin: storage and RPC plumbing here, the logic in ./tenant/*.ts and src/domain.
import { DurableObject } from "cloudflare:workers";
import { observe } from "../domain/histogram.ts";
import { emptyUsage } from "../domain/quota.ts";
import { type Release, released } from "../domain/release.ts";
import type { Env } from "../env.ts";
import { fail, type Result } from "../errors.ts";
import { AlarmPlanner } from "../lib/alarm.ts";
import { loadCatalog } from "../lib/catalog-load.ts";
import type { Mailbox } from "../lib/mailbox.ts";
import type { Outbox } from "../lib/outbox.ts";
import { withDb } from "../lib/pg.ts";
import { all, type Meta, migrate } from "../lib/sql.ts";
import type { CatalogCache, KeyPrincipal, TenantCatalog } from "./tenant/catalog.ts";
import { buildTenantCtx, type TenantCtx } from "./tenant/context.ts";
import { resolveDependents } from "./tenant/deps.ts";
import { EventsHub } from "./tenant/events-hub.ts";
import { explainJob } from "./tenant/explain.ts";
import type { JobStore } from "./tenant/jobs.ts";
import {
  applyUpdates,
  type ClaimItem,
  type ClaimResult,
  claim,
  type LostReason,
  leasesLost,
  type UpdateResult,
  unclaim,
  type WorkerUpdate,
} from "./tenant/leases.ts";
import type { Ledger } from "./tenant/ledger.ts";
import {
  arrayJobs,
  arraySummary,
  cancelJobs,
  listRuns,
  type PipelineTemplate,
  runJobs,
  runView,
  startRun,
} from "./tenant/pipelines.ts";
import { RateLimiter } from "./tenant/rate-limit.ts";
import { TenantReads } from "./tenant/reads.ts";
import { TENANT_SCHEMA } from "./tenant/schema.ts";
import {
  dryRunPolicies,
  type SubmitJob,
  type SubmitReply,
  type SubmitRequest,
  toReply,
} from "./tenant/submit.ts";
import { SubmitBatcher } from "./tenant/submit-batch.ts";
import { Upkeep } from "./tenant/upkeep.ts";

/** How long a history read waits for the outbox before it reads what Postgres has (which may then lag). */
const HISTORY_SYNC_MS = 2_000;
export class TenantQueue extends DurableObject<Env> {
  private sql: SqlStorage;
  private meta: Meta;
  private outbox: Outbox;
  private mailbox: Mailbox;
  private catalog: CatalogCache;
  private jobs!: JobStore;
  private ledger!: Ledger;
  private planner: AlarmPlanner;
  private limiter = new RateLimiter();
  private tc!: TenantCtx;
  private reads: TenantReads;
  private hub: EventsHub;
  private upkeep!: Upkeep;
  private submits: SubmitBatcher;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.planner = new AlarmPlanner(ctx.storage);
    migrate(this.sql, TENANT_SCHEMA);
    this.tc = buildTenantCtx(
      ctx.storage,
      env,
      () => this.tenantId,
      () => this.upkeep.demandChanged(),
    );
    ({ meta: this.meta, outbox: this.outbox, mailbox: this.mailbox, catalog: this.catalog } = this.tc);
    ({ jobs: this.jobs, ledger: this.ledger } = this.tc);
    this.reads = new TenantReads(this.tc);
    this.upkeep = new Upkeep(this.tc);
    this.submits = new SubmitBatcher(this.tc, () => this.afterWrite());
    this.hub = new EventsHub(
      ctx,
      this.sql,
      () => this.tenantId,
      () => this.meta.num("event_seq"),
    );
    this.jobs.onChange((job) => resolveDependents(this.tc, job));
    this.jobs.onChange((job, ev) => this.hub.queue(() => EventsHub.ofJob(job, ev)));
    ctx.blockConcurrencyWhile(() => this.planner.init());
  }

  private get tenantId(): string {
    return this.meta.get("tenant_id") ?? this.ctx.id.name ?? "unknown";
  }

  /** First use of an object whose catalog was never pushed: read it from Postgres once. */
  private async ensureCatalog(): Promise<boolean> {
    if (this.catalog.loaded) return true;
    const name = this.ctx.id.name;
    if (!name) return false;
    const c = await withDb(this.env, (db) => loadCatalog(db, name));
    if (!c) return false;
    this.catalog.apply(c);
    return true;
  }

  // ---------------------------------------------------------------- catalog and auth

  async syncCatalog(c: TenantCatalog): Promise<{ applied: boolean; rev: number }> {
    const applied = this.catalog.apply(c);
    if (applied) {
      this.upkeep.demandChanged(); // weight or quota may have changed: the scheduler must know (cohorts lend)
      await this.afterWrite();
    }
    return { applied, rev: this.catalog.rev };
  }

  async authenticate(hash: string): Promise<KeyPrincipal | null> {
    if (!(await this.ensureCatalog())) return null;
    return this.catalog.principal(hash);
  }

  /** Token bucket for read routes that are not served by this object (e.g. list from Postgres). */
  async rateCheck(kind: "read" | "submit", cost = 1): Promise<Result<Record<never, never>>> {
    return this.limiter.check(this.catalog.limits(), kind, cost);
  }

  /**
   * Before a read of the tenant's Postgres history (jobs list, usage): the rate limit, then the outbox
   * flushed through its newest row, so the read sees the caller's own writes. Bounded by HISTORY_SYNC_MS.
   */
  async readHistory(): Promise<Result<Record<never, never>>> {
    const limited = this.limiter.check(this.catalog.limits(), "read", 1);
    if (!limited.ok) return limited;
    await this.syncHistory();
    return limited;
  }

  /** Postgres holds every row written before this call (bounded wait): an admin's audit read of us. */
  async syncHistory(): Promise<boolean> {
    return this.outbox.flushThrough(this.env, HISTORY_SYNC_MS);
  }

  // ---------------------------------------------------------------- tenant API

  async submit(keyHash: string, req: SubmitRequest): Promise<Result<SubmitReply>> {
    if (!(await this.ensureCatalog())) return fail("Unauthorized", "unknown tenant");
    const who = this.catalog.principal(keyHash);
    if (!who) return fail("Unauthorized", "API key is not valid (revoked?)");
    const limited = this.limiter.check(this.catalog.limits(), "submit", req.job.array?.size ?? 1);
    if (!limited.ok) return limited;
    for (const s of req.latencies ?? []) observe(this.tc.stats.submit, s);
    const r = await this.submits.submit(who, req);
    return r.ok ? { ok: true, ...toReply(r) } : r;
  }

  /** The dry run: exactly the evaluation submit performs, with the same cached policies. */
  async evaluatePolicies(job: SubmitJob, user: string) {
    if (!(await this.ensureCatalog())) return fail("NotFound", "unknown tenant");
    const r = dryRunPolicies(this.tc, job, user);
    return { ok: true as const, value: r };
  }

  async cancel(jobId: string, actor: string, requestId: string) {
    const limited = this.limiter.check(this.catalog.limits(), "read");
    if (!limited.ok) return limited;
    const r = this.reads.cancel(jobId, actor, requestId);
    await this.afterWrite();
    if (r.ok) void this.deliverMail();
    return r;
  }

  /** Reads are rate limited like any tenant call; `null` from `fn` means not found. */
  private read<T>(fn: () => T | null, what: string): Result<{ value: T }> {
    const limited = this.limiter.check(this.catalog.limits(), "read");
    if (!limited.ok) return limited;
    const value = fn();
    return value === null ? fail("NotFound", `no ${what}`) : { ok: true, value };
  }

  async getJob(id: string) {
    return this.read(() => this.reads.job(id), `job ${id}`);
  }

  async jobEvents(id: string) {
    return this.read(() => this.reads.events(id), `job ${id}`);
  }

  async jobLog(id: string) {
    return this.read(() => {
      if (!this.jobs.get(id)) return null;
      return this.reads.log(id) ?? { attempt: 0, tail: "", updatedAt: null };
    }, `job ${id}`);
  }

  async explain(id: string) {
    const limited = this.limiter.check(this.catalog.limits(), "read");
    if (!limited.ok) return limited;
    return explainJob(this.tc, id);
  }

  async queueStats() {
    return this.read(() => this.reads.queue(), "queue");
  }

  async quota() {
    return this.read(() => this.reads.quota(), "quota");
  }

  async quotaCheck(gpus: number, gpuType: string | null) {
    return this.read(() => this.reads.quotaCheck(gpus, gpuType), "quota");
  }

  async allocate(
    gpus: number,
    gpuType: string | null,
    note: string | null,
    actor: string,
    requestId: string,
  ) {
    const r = this.reads.allocate(gpus, gpuType, note, actor, requestId);
    await this.afterWrite();
    return r;
  }

  async deallocate(id: string, actor: string, requestId: string) {
    const r = this.reads.deallocate(id, actor, requestId);
    await this.afterWrite();
    return r;
  }

  // ---------------------------------------------------------------- arrays and pipeline runs

  async startRun(keyHash: string, template: PipelineTemplate, requestId: string) {
    if (!(await this.ensureCatalog())) return fail("Unauthorized", "unknown tenant");
    const who = this.catalog.principal(keyHash);
    if (!who) return fail("Unauthorized", "API key is not valid (revoked?)");
    const limited = this.limiter.check(this.catalog.limits(), "submit", template.steps.length);
    if (!limited.ok) return limited;
    const r = startRun(this.tc, who, template, requestId);
    await this.afterWrite();
    return r;
  }

  async getRun(runId: string) {
    return this.read(() => runView(this.tc, runId), `run ${runId}`);
  }

  async listRuns(pipelineId: string) {
    return this.read(() => listRuns(this.tc, pipelineId), "runs");
  }

  async cancelRun(runId: string, actor: string, requestId: string) {
    const jobs = runJobs(this.tc, runId);
    if (!jobs) return fail("NotFound", `no run ${runId}`);
    const cancelled = cancelJobs(this.tc, jobs, actor, {
      requestId,
      action: "pipeline.run.cancel",
      target: runId,
    });
    await this.afterWrite();
    void this.deliverMail();
    return { ok: true as const, cancelled, run: runView(this.tc, runId)! };
  }

  async arraySummary(arrayId: string) {
    return this.read(() => arraySummary(this.tc, arrayId), `array ${arrayId}`);
  }

  async cancelArray(arrayId: string, actor: string, requestId: string) {
    const jobs = arrayJobs(this.tc, arrayId);
    if (jobs.length === 0) return fail("NotFound", `no array ${arrayId}`);
    const cancelled = cancelJobs(this.tc, jobs, actor, {
      requestId,
      action: "array.cancel",
      target: arrayId,
    });
    await this.afterWrite();
    void this.deliverMail();
    return { ok: true as const, cancelled, array: arraySummary(this.tc, arrayId)! };
  }

  /** GPUs held right now, for usage reports that include jobs still running. */
  async liveUsage() {
    return all<{ user: string; gpu_type: string; gpus: number; since: number }>(
      this.sql,
      "SELECT user, assigned_type AS gpu_type, gpus, scheduled_at AS since FROM jobs WHERE state IN ('scheduled','running')",
    );
  }

  /** Events after a sequence number (live stream resume, tests). */
  async eventsSince(afterSeq: number, limit = 1000) {
    return this.reads.eventsSince(afterSeq, limit);
  }

  // ---------------------------------------------------------------- scheduler and fleet side

  /** `rev`: the demand revision after the claim; summaries computed before it are stale. */
  async claim(items: ClaimItem[]): Promise<{ results: ClaimResult[]; rev: number }> {
    const results = claim(this.tc, items);
    await this.afterWrite();
    return { results, rev: this.meta.num("demand_rev") };
  }

  async unclaim(items: { jobId: string; lease: number; reason: string }[]): Promise<void> {
    unclaim(this.tc, items);
    await this.afterWrite();
  }

  /**
   * Reports forwarded by a fleet shard. `release` (GPUs these reports gave back, at the demand revision
   * after them) rides on the shard's capacity push, so the scheduler never sees the GPUs free while they
   * still count against this tenant (src/domain/release.ts).
   */
  async applyWorkerUpdates(
    updates: WorkerUpdate[],
  ): Promise<{ results: UpdateResult[]; release: Release | null }> {
    const ledger = this.tc.ledger;
    ledger.takeGivenBack(); // whatever other paths gave back is not this call's (their summaries follow)
    const results = applyUpdates(this.tc, updates); // synchronous: nothing else runs in between
    const release = released(
      this.tc.tenantId,
      this.tc.meta.num("demand_rev"),
      ledger.takeGivenBack(),
      emptyUsage(),
    );
    await this.afterWrite();
    return { results, release };
  }

  async leasesLost(items: { jobId: string; lease: number; reason: LostReason }[]): Promise<number> {
    const n = leasesLost(this.tc, items);
    await this.afterWrite();
    return n;
  }

  /** Cron safety net: everything the alarm does, now. */
  async tick(): Promise<{ outbox: number }> {
    await this.alarm();
    return { outbox: this.outbox.pending() };
  }

  /** For tests and ops: flush the outbox now and report what is left. */
  async flushOutbox(): Promise<{ flushed: number; pending: number }> {
    const flushed = await this.outbox.flush(this.env);
    return { flushed, pending: this.outbox.pending() };
  }

  // ---------------------------------------------------------------- live events

  /** Only the Worker reaches this (after authenticating the tenant): WebSocket or SSE event streams. */
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const after = url.searchParams.get("after");
    const job = url.searchParams.get("job");
    const afterSeq =
      after === "latest"
        ? this.hub.latestSeq()
        : after !== null && /^\d+$/.test(after)
          ? Number(after)
          : null;
    const latest = this.hub.latestSeq();
    // An id we never issued: the Worker answers 400 (a resume from it would wait for ids that are not due).
    if (afterSeq !== null && afterSeq > latest) return Response.json({ latest }, { status: 400 });
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket")
      return this.hub.acceptWebSocket(afterSeq, job);
    return this.hub.openSse(afterSeq, job);
  }

  async recentEvents(after: number | "latest", job: string | null, limit: number) {
    const latest = this.hub.latestSeq();
    const items = after === "latest" ? [] : this.hub.replay(after, job, limit);
    return { items, latest };
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (message === "ping") ws.send("pong");
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 ? 1000 : code, "bye");
    } catch {}
  }

  // ---------------------------------------------------------------- alarm

  private async afterWrite(): Promise<void> {
    this.hub.flush();
    // Anything a write can make due (demand push, outbox flush) is at least a debounce away; mail is
    // delivered directly. An alarm already set within that is early enough: skip the recomputation.
    const { debounceMs, outboxFlushMs } = this.tc.cfg;
    const next = this.planner.next;
    if (next !== null && next <= Date.now() + Math.min(debounceMs, outboxFlushMs)) return;
    const due = this.upkeep.nextDue();
    if (due !== null) await this.planner.atMost(due);
  }

  private deliverMail(): Promise<void> {
    return this.upkeep.deliverMail();
  }

  override async alarm(): Promise<void> {
    this.planner.fired();
    await this.upkeep.run(Date.now());
    this.hub.flush();
    await this.planner.reset(this.upkeep.nextDue());
  }
}
