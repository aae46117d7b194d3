// A fleet shard: workers, heartbeats, liveness and job leases for the workers whose id names this shard.
// Sharding keeps each object far below its request-rate limit (10k workers at 10 s over 16 shards ≈ 63/s).
import { DurableObject } from "cloudflare:workers";
import { timingSafeEqualHex } from "../domain/ids.ts";
import { deadlinesAt, type Timing } from "../domain/liveness.ts";
import { config, type Env } from "../env.ts";
import { fail, type Result } from "../errors.ts";
import { AlarmPlanner, minTime } from "../lib/alarm.ts";
import { Mailbox } from "../lib/mailbox.ts";
import { Outbox } from "../lib/outbox.ts";
import { Meta, migrate, scalar } from "../lib/sql.ts";
import { schedulerStub, tenantStub } from "../stubs.ts";
import { CapacityPusher } from "./fleet/capacity-push.ts";
import { WorkerChannel } from "./fleet/channel.ts";
import {
  type AssignItem,
  type Assignment,
  pushFresh,
  reconcile,
  recordLeases,
  writeLeases,
} from "./fleet/leases.ts";
import { extendAfterOutage, markSeen, nextLivenessDue, sweepLiveness } from "./fleet/liveness.ts";
import { type AgentUpdate, applyReports, type Rejection } from "./fleet/reports.ts";
import {
  FLEET_SCHEMA,
  FleetStore,
  type LeaseRow,
  LIVE,
  type RegisterInput,
  type WorkerRow,
  type WorkerView,
} from "./fleet/store.ts";

export type { AssignItem, Assignment } from "./fleet/leases.ts";
export type { RegisterInput } from "./fleet/store.ts";

export interface HeartbeatResponse {
  assignments: Assignment[];
  cancel: string[];
  drain: boolean;
  rejected: Rejection[];
}

const RELEASED_KEEP_MS = 15 * 60 * 1000;

export class FleetShard extends DurableObject<Env> {
  private sql: SqlStorage;
  private meta: Meta;
  private store: FleetStore;
  private outbox: Outbox;
  private mailbox: Mailbox;
  private planner: AlarmPlanner;
  private channel: WorkerChannel;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    migrate(this.sql, FLEET_SCHEMA);
    this.meta = new Meta(this.sql);
    this.store = new FleetStore(this.sql, ctx.id.name ?? this.meta.get("shard") ?? "shard-00");
    this.outbox = new Outbox(this.sql);
    this.mailbox = new Mailbox(this.sql);
    this.planner = new AlarmPlanner(ctx.storage);
    this.channel = new WorkerChannel(ctx);
    ctx.blockConcurrencyWhile(() => this.planner.init());
  }

  private get cfg() {
    return config(this.env);
  }

  private get timing(): Timing {
    return { heartbeatMs: this.cfg.heartbeatSeconds * 1000, ttlMs: this.cfg.leaseTtlSeconds * 1000 };
  }

  // ------------------------------------------------------------------ registration and auth

  async register(w: RegisterInput): Promise<void> {
    const now = Date.now();
    const d = deadlinesAt(now, this.timing);
    this.meta.set("shard", this.store.shard);
    this.ctx.storage.transactionSync(() => {
      this.store.insertWorker(w, now, d);
      this.store.liveness.forget(w.id);
      this.store.markDirty(w.id);
      this.outbox.add({ kind: "worker", data: this.store.record(this.store.worker(w.id)!) });
    });
    await this.afterWrite();
    void this.pushCapacity();
  }

  private authed(workerId: string, tokenHash: string): Result<{ w: WorkerRow }> {
    const w = this.store.worker(workerId);
    if (!w || w.state === "left") return fail("NotFound", `no worker ${workerId}; register again`);
    if (!timingSafeEqualHex(w.token_hash, tokenHash))
      return fail("Unauthorized", "worker token is not valid");
    return { ok: true, w };
  }

  /** The worker's token digest, for the gateway's per-isolate cache (null: unknown or gone). */
  async tokenHash(workerId: string): Promise<string | null> {
    const w = this.store.worker(workerId);
    return w && w.state !== "left" ? w.token_hash : null;
  }

  // ------------------------------------------------------------------ agent calls

  async heartbeat(
    workerId: string,
    tokenHash: string,
    body: { running: { jobId: string; lease: number }[]; updates?: AgentUpdate[] },
  ): Promise<Result<HeartbeatResponse>> {
    const a = this.authed(workerId, tokenHash);
    if (!a.ok) return a;
    const now = Date.now();
    this.counters.heartbeats++;
    this.touch(a.w, now);
    const { rejected } = await this.applyUpdates(workerId, body.updates ?? []);
    const hbMs = this.cfg.heartbeatSeconds * 1000;
    const r = reconcile(this.store, workerId, body.running, body.updates ?? [], now, hbMs);
    if (r.writes.length) this.ctx.storage.transactionSync(() => writeLeases(this.sql, r.writes));
    const { assignments, cancel, lost: cancelNow } = r;
    if (cancelNow.length) await this.loseLeases(cancelNow, "LeaseExpired");
    // A plain heartbeat only pushes this worker's deadlines later: the alarm already set is early enough.
    if (cancelNow.length || body.updates?.length) await this.afterWrite();
    return {
      ok: true,
      assignments: a.w.drain ? [] : assignments,
      cancel,
      drain: a.w.drain === 1,
      rejected,
    };
  }

  /** A single status report (PRODUCT.md §3). Stale or refused → the caller answers 409. */
  async report(workerId: string, tokenHash: string, update: AgentUpdate): Promise<Result<{ state: string }>> {
    const a = this.authed(workerId, tokenHash);
    if (!a.ok) return a;
    this.counters.reports++;
    this.touch(a.w, Date.now());
    const { rejected } = await this.applyUpdates(workerId, [update]);
    await this.afterWrite();
    const r = rejected[0];
    if (r) return fail(r.code === "NotFound" ? "StaleLease" : r.code, r.message);
    return { ok: true, state: this.store.leaseKey(update.jobId)?.state ?? update.state };
  }

  private async applyUpdates(workerId: string, updates: AgentUpdate[]) {
    if (updates.length === 0) return { rejected: [] as Rejection[], accepted: [] as string[] };
    const r = await applyReports(
      this.store,
      this.sql,
      this.ctx.storage,
      workerId,
      updates,
      (tenantId, items) => tenantStub(this.env, tenantId).applyWorkerUpdates(items),
    );
    this.pusher.released(r.releases);
    void this.pushCapacity();
    return r;
  }

  /** Any call from the agent proves it is alive (fleet/liveness.ts: usually without a storage write). */
  private touch(w: WorkerRow, now: number): void {
    if (!markSeen(this.sql, this.store, w, now, this.timing)) return;
    this.changed(w.id);
    void this.pushCapacity();
  }

  async drain(workerId: string): Promise<Result<{ worker: WorkerView }>> {
    const w = this.store.worker(workerId);
    if (!w || w.state === "left") return fail("NotFound", `no worker ${workerId}`);
    if (!w.drain) {
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("UPDATE workers SET drain = 1 WHERE id = ?", workerId);
        this.changed(workerId);
      });
      this.channel.send(workerId, { type: "drain" });
      await this.afterWrite();
      void this.pushCapacity();
    }
    return { ok: true, worker: this.store.describe(this.store.worker(workerId)!) };
  }

  /** The agent leaves for good; leases it still holds are handed back to their queues. */
  async deregister(workerId: string, tokenHash: string): Promise<Result<{ requeued: number }>> {
    const a = this.authed(workerId, tokenHash);
    if (!a.ok) return a;
    const leases = this.store.leasesOf(workerId);
    await this.loseLeases(leases, "WorkerLeft");
    this.ctx.storage.transactionSync(() => this.setState(workerId, "left"));
    await this.afterWrite();
    void this.pushCapacity();
    return { ok: true, requeued: leases.length };
  }

  // ------------------------------------------------------------------ scheduler and tenants

  /** Leases chosen by the scheduler and already committed by their tenants. Refused if the GPUs are gone. */
  async assign(items: AssignItem[]) {
    const now = Date.now();
    const { results, touched } = this.ctx.storage.transactionSync(() =>
      recordLeases(this.store, this.sql, items, now),
    );
    // Deliver at once to connected agents; the heartbeat re-delivers anything they miss.
    for (const wid of touched) pushFresh(this.store, this.sql, wid, now, (m) => this.channel.send(wid, m));
    const capacity = [...touched].map((id) => this.store.capacity(this.store.worker(id)!));
    await this.afterWrite();
    return { results, capacity };
  }

  /** Tenants asking to stop jobs (delivered through their mailboxes; idempotent). */
  async cancelLeases(items: { workerId: string; jobId: string; lease: number }[]): Promise<void> {
    const undelivered: LeaseRow[] = [];
    for (const it of items) {
      const l = this.store.lease(it.jobId);
      if (!l || l.lease !== it.lease) continue;
      this.sql.exec("UPDATE leases SET cancel = 1 WHERE job_id = ?", l.job_id);
      if (l.state === "assigned" && !l.delivered_at) undelivered.push(l);
      else this.channel.send(l.worker_id, { type: "cancel", jobIds: [l.job_id] });
    }
    if (undelivered.length) await this.loseLeases(undelivered, "Cancelled");
    await this.afterWrite();
  }

  /** Of these leases, the ones this shard does not hold (the tenant requeues them). */
  async unknownLeases(items: { jobId: string; lease: number; workerId: string }[]): Promise<string[]> {
    return items
      .filter((it) => {
        const l = this.store.lease(it.jobId);
        return !l || l.lease !== it.lease || l.worker_id !== it.workerId;
      })
      .map((it) => it.jobId);
  }

  /** Full capacity of this shard, for the scheduler to rebuild its view. */
  async capacitySnapshot() {
    return {
      shard: this.store.shard,
      workers: this.store
        .workers()
        .filter((w) => LIVE.has(w.state))
        .map((w) => this.store.capacity(w)),
    };
  }

  private counters = { heartbeats: 0, reports: 0 };

  /** Counters and gauges for /metrics without shipping the whole worker list. */
  async stats() {
    return {
      ...this.store.gauges(),
      ...this.counters,
      outboxPending: this.outbox.pending(),
      outboxLagSeconds: this.outbox.lagSeconds(),
    };
  }

  async listWorkers() {
    return this.store.workers().map((w) => this.store.describe(w));
  }

  // ------------------------------------------------------------------ WebSocket channel to agents

  override async fetch(request: Request): Promise<Response> {
    const workerId = request.headers.get("x-gantry-worker") ?? "";
    const a = this.authed(workerId, request.headers.get("x-gantry-token-hash") ?? "");
    if (!a.ok) return new Response("unauthorized", { status: 401 });
    this.touch(a.w, Date.now());
    return this.channel.accept(workerId, a.w.token_hash);
  }

  /** Heartbeats over the channel: the same call as POST /heartbeat, re-authenticated on every frame. */
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    await this.channel.receive(ws, message, (id, tokenHash, body: Parameters<FleetShard["heartbeat"]>[2]) =>
      this.heartbeat(id, tokenHash, body),
    );
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 ? 1000 : code, "bye");
    } catch {
      // already closed
    }
  }

  // ------------------------------------------------------------------ liveness and delivery

  /** Hand leases back to their tenants (reliably, through the mailbox) and free their GPUs now. */
  private async loseLeases(leases: LeaseRow[], reason: string): Promise<void> {
    if (leases.length === 0) return;
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      for (const l of leases) {
        this.mailbox.add(`tenant:${l.tenant_id}`, "leasesLost", { jobId: l.job_id, lease: l.lease, reason });
        this.store.releaseLease(l, reason, now);
      }
    });
    void this.deliverMail();
    void this.pushCapacity();
  }

  override async alarm(): Promise<void> {
    // The planner knows when it was due unless this object was restarted; then the persisted copy does.
    const due = this.planner.fired() ?? (this.meta.get("alarm_due") ? this.meta.num("alarm_due") : null);
    const now = Date.now();
    // An alarm that fires far later than it was due means this object (or the platform) was down: the
    // silence was ours, not the workers'. Give every live worker a fresh lease instead of declaring the
    // whole fleet dead and requeueing every running job at once.
    if (due !== null && now - due > 2 * this.cfg.heartbeatSeconds * 1000)
      extendAfterOutage(this.sql, this.store, now, now - due, this.timing);
    await sweepLiveness(this.sql, this.store, now, {
      suspect: (id) => this.ctx.storage.transactionSync(() => this.setState(id, "suspect")),
      dead: async (id) => {
        await this.loseLeases(this.store.leasesOf(id), "WorkerLost");
        this.ctx.storage.transactionSync(() => this.setState(id, "dead"));
      },
    });
    this.sql.exec("DELETE FROM released WHERE at < ?", now - RELEASED_KEEP_MS);
    await Promise.allSettled([this.deliverMail(), this.pushCapacity()]);
    if (this.outbox.hasRows()) await this.outbox.flush(this.env).catch(() => {});
    const next = this.nextDue();
    if (next === null) this.meta.del("alarm_due");
    else this.meta.set("alarm_due", next);
    await this.planner.reset(next);
  }

  async tick(): Promise<void> {
    await this.alarm();
  }

  /** A worker's row changed: newer version for the scheduler, a snapshot for Postgres. */
  private changed(workerId: string): void {
    this.store.bump(workerId);
    this.outbox.add({ kind: "worker", data: this.store.record(this.store.worker(workerId)!) });
  }

  private setState(workerId: string, state: "suspect" | "dead" | "left"): void {
    const clear = state === "suspect" ? "" : ", suspect_at = NULL, dead_at = NULL";
    this.sql.exec(`UPDATE workers SET state = ?${clear} WHERE id = ?`, state, workerId);
    if (state !== "suspect") this.store.liveness.forget(workerId);
    this.changed(workerId);
  }

  private nextDue(now = Date.now()): number | null {
    const dirty = scalar<number>(this.sql, "SELECT count(*) FROM capacity_dirty") ? now + 1000 : null;
    const outboxDue = this.outbox.hasRows()
      ? now + (this.outbox.failures ? this.outbox.retryDelayMs() : this.cfg.outboxFlushMs)
      : null;
    return minTime(nextLivenessDue(this.sql, this.store), dirty, outboxDue, this.mailbox.nextDue());
  }

  private async afterWrite(): Promise<void> {
    const due = this.nextDue();
    if (due !== null) await this.planner.atMost(due);
  }

  private deliverMail(): Promise<void> {
    return this.mailbox.deliver(async (target, method, payloads) => {
      const [kind, name] = target.split(":") as [string, string];
      if (kind === "tenant" && method === "leasesLost") {
        await tenantStub(this.env, name).leasesLost(payloads as never);
        return;
      }
      throw new Error(`unknown mailbox route ${target} ${method}`);
    });
  }

  private pusher = new CapacityPusher(
    this.ctx.storage.sql,
    () => this.store,
    (r, releases) => schedulerStub(this.env).updateCapacity(r, releases),
  );

  /** Tell the scheduler what changed; versions let it ignore reports older than what it already knows. */
  private pushCapacity(): Promise<void> {
    return this.pusher.push();
  }
}
