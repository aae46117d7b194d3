// A fleet shard: workers, heartbeats, liveness and job leases for the workers whose id names this shard.
// Sharding keeps each object far below its request-rate limit (10k workers at 10 s over 16 shards ≈ 63/s).
import { DurableObject } from "cloudflare:workers";
import { timingSafeEqualHex } from "../domain/ids.ts";
import { config, type Env } from "../env.ts";
import { fail, type Result } from "../errors.ts";
import { AlarmPlanner, minTime } from "../lib/alarm.ts";
import { Mailbox } from "../lib/mailbox.ts";
import { Outbox } from "../lib/outbox.ts";
import { all, Meta, migrate, scalar } from "../lib/sql.ts";
import { schedulerStub, tenantStub } from "../stubs.ts";
import { WorkerChannel } from "./fleet/channel.ts";
import { type AgentUpdate, applyReports, type Rejection } from "./fleet/reports.ts";
import {
  FLEET_SCHEMA,
  FleetStore,
  type GpuInfo,
  type LeaseRow,
  LIVE,
  type WorkerRow,
} from "./fleet/store.ts";
import type { AssignmentSpec } from "./tenant/leases.ts";

export interface RegisterInput {
  id: string;
  poolId: string;
  hostname: string;
  tokenHash: string;
  gpus: GpuInfo[];
  labels: Record<string, string>;
  agentVersion: string | null;
}

export interface AssignItem {
  placementId: string;
  workerId: string;
  indices: number[];
  assignment: AssignmentSpec;
}

export interface Assignment {
  jobId: string;
  lease: number;
  gpuIndices: number[];
  spec: AssignmentSpec["spec"] & { tenantId: string; gpuType: string };
}

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

  private deadlines(now: number) {
    const hb = this.cfg.heartbeatSeconds * 1000;
    return { suspect_at: now + 2 * hb, dead_at: now + this.cfg.leaseTtlSeconds * 1000 };
  }

  // ------------------------------------------------------------------ registration and auth

  async register(w: RegisterInput): Promise<void> {
    const now = Date.now();
    const d = this.deadlines(now);
    this.meta.set("shard", this.store.shard);
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        `INSERT INTO workers (id, pool_id, hostname, token_hash, gpus, labels, agent_version, state, drain,
           registered_at, last_seen, suspect_at, dead_at, version)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'starting', 0, ?, ?, ?, ?, 1)`,
        w.id,
        w.poolId,
        w.hostname,
        w.tokenHash,
        JSON.stringify(w.gpus),
        JSON.stringify(w.labels),
        w.agentVersion,
        now,
        now,
        d.suspect_at,
        d.dead_at,
      );
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

  async authenticate(workerId: string, tokenHash: string): Promise<boolean> {
    return this.authed(workerId, tokenHash).ok;
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
    this.touch(a.w, now);
    const { rejected } = await this.applyUpdates(workerId, body.updates ?? []);
    const reported = new Set((body.updates ?? []).map((u) => u.jobId));
    const running = new Map(body.running.map((r) => [r.jobId, r.lease]));
    const cancel: string[] = [];
    const assignments: Assignment[] = [];
    const cancelNow: LeaseRow[] = [];
    const hb = this.cfg.heartbeatSeconds * 1000;
    for (const [jobId, lease] of running) {
      const l = this.store.lease(jobId);
      // A job this worker runs without holding its lease (e.g. it was declared dead meanwhile): stop it.
      if (!l || l.lease !== lease || l.worker_id !== workerId) cancel.push(jobId);
    }
    this.ctx.storage.transactionSync(() => {
      for (const l of this.store.leasesOf(workerId)) {
        const runs = running.get(l.job_id) === l.lease;
        if (runs) {
          if (l.cancel) cancel.push(l.job_id);
          if (l.state !== "running" || l.missing_since) {
            this.sql.exec(
              "UPDATE leases SET state = 'running', missing_since = NULL WHERE job_id = ?",
              l.job_id,
            );
          }
          continue;
        }
        if (reported.has(l.job_id)) continue;
        if (l.state === "assigned") {
          // Never started there. A cancelled one that was delivered a while ago is simply dropped.
          if (l.cancel && (!l.delivered_at || l.delivered_at < now - 1000)) cancelNow.push(l);
          else if (!l.cancel) {
            assignments.push(toAssignment(l));
            this.sql.exec("UPDATE leases SET delivered_at = ? WHERE job_id = ?", now, l.job_id);
          }
        } else if (!l.missing_since) {
          this.sql.exec("UPDATE leases SET missing_since = ? WHERE job_id = ?", now, l.job_id);
        } else if (l.missing_since < now - 2 * hb) {
          cancelNow.push(l); // the agent stopped reporting a job it had started: the lease is lost
        }
      }
    });
    if (cancelNow.length) await this.loseLeases(cancelNow, "LeaseExpired");
    await this.afterWrite();
    return {
      ok: true,
      assignments: a.w.drain ? [] : assignments,
      cancel: [...new Set(cancel)],
      drain: a.w.drain === 1,
      rejected,
    };
  }

  /** A single status report (PRODUCT.md §3). Stale or refused → the caller answers 409. */
  async report(workerId: string, tokenHash: string, update: AgentUpdate): Promise<Result<{ state: string }>> {
    const a = this.authed(workerId, tokenHash);
    if (!a.ok) return a;
    this.touch(a.w, Date.now());
    const { rejected } = await this.applyUpdates(workerId, [update]);
    await this.afterWrite();
    const r = rejected[0];
    if (r) return fail(r.code === "NotFound" ? "StaleLease" : r.code, r.message);
    return { ok: true, state: this.store.lease(update.jobId)?.state ?? update.state };
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
    void this.pushCapacity();
    return r;
  }

  /** Any call from the agent proves it is alive. */
  private touch(w: WorkerRow, now: number): void {
    const d = this.deadlines(now);
    const revived = w.state !== "alive";
    this.sql.exec(
      "UPDATE workers SET last_seen = ?, suspect_at = ?, dead_at = ?, state = 'alive' WHERE id = ?",
      now,
      d.suspect_at,
      d.dead_at,
      w.id,
    );
    if (revived) {
      this.store.bump(w.id);
      this.outbox.add({ kind: "worker", data: this.store.record(this.store.worker(w.id)!) });
      void this.pushCapacity();
    }
  }

  async drain(workerId: string): Promise<Result<{ worker: ReturnType<FleetShard["describe"]> }>> {
    const w = this.store.worker(workerId);
    if (!w || w.state === "left") return fail("NotFound", `no worker ${workerId}`);
    if (!w.drain) {
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("UPDATE workers SET drain = 1 WHERE id = ?", workerId);
        this.store.bump(workerId);
        this.outbox.add({ kind: "worker", data: this.store.record(this.store.worker(workerId)!) });
      });
      this.channel.send(workerId, { type: "drain" });
      await this.afterWrite();
      void this.pushCapacity();
    }
    return { ok: true, worker: this.describe(this.store.worker(workerId)!) };
  }

  /** The agent leaves for good; leases it still holds are handed back to their queues. */
  async deregister(workerId: string, tokenHash: string): Promise<Result<{ requeued: number }>> {
    const a = this.authed(workerId, tokenHash);
    if (!a.ok) return a;
    const leases = this.store.leasesOf(workerId);
    await this.loseLeases(leases, "WorkerLeft");
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        "UPDATE workers SET state = 'left', suspect_at = NULL, dead_at = NULL WHERE id = ?",
        workerId,
      );
      this.store.bump(workerId);
      this.outbox.add({ kind: "worker", data: this.store.record(this.store.worker(workerId)!) });
    });
    await this.afterWrite();
    void this.pushCapacity();
    return { ok: true, requeued: leases.length };
  }

  // ------------------------------------------------------------------ scheduler and tenants

  /** Leases chosen by the scheduler and already committed by their tenants. Refused if the GPUs are gone. */
  async assign(items: AssignItem[]) {
    const now = Date.now();
    const results: { placementId: string; ok: boolean; reason?: string }[] = [];
    const touched = new Set<string>();
    this.ctx.storage.transactionSync(() => {
      for (const it of items) {
        const w = this.store.worker(it.workerId);
        if (!w || !this.store.schedulable(w)) {
          results.push({ placementId: it.placementId, ok: false, reason: "WorkerUnavailable" });
          continue;
        }
        const busy = this.store.busyIndices(w.id);
        const exists = new Set(this.store.gpus(w).map((g) => g.index));
        if (it.indices.some((i) => busy.has(i) || !exists.has(i))) {
          results.push({ placementId: it.placementId, ok: false, reason: "GpusBusy" });
          continue;
        }
        const a = it.assignment;
        this.sql.exec(
          `INSERT OR REPLACE INTO leases (job_id, tenant_id, lease, worker_id, gpu_indices, gpu_type, assignment, state, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'assigned', ?)`,
          a.jobId,
          a.tenantId,
          a.lease,
          w.id,
          JSON.stringify(it.indices),
          a.gpuType,
          JSON.stringify(a),
          now,
        );
        this.store.bump(w.id);
        touched.add(w.id);
        results.push({ placementId: it.placementId, ok: true });
      }
    });
    // Deliver at once to connected agents; the heartbeat re-delivers anything they miss.
    for (const wid of touched) {
      const fresh = this.store
        .leasesOf(wid)
        .filter((l) => l.state === "assigned" && !l.delivered_at && !l.cancel);
      if (
        fresh.length &&
        this.channel.send(wid, { type: "assignments", assignments: fresh.map(toAssignment) })
      ) {
        for (const l of fresh)
          this.sql.exec("UPDATE leases SET delivered_at = ? WHERE job_id = ?", now, l.job_id);
      }
    }
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

  async listWorkers() {
    return this.store.workers().map((w) => this.describe(w));
  }

  describe(w: WorkerRow) {
    const cap = this.store.capacity(w);
    return {
      id: w.id,
      poolId: w.pool_id,
      hostname: w.hostname,
      state: w.state,
      draining: w.drain === 1,
      gpus: this.store.gpus(w),
      freeGpuIndices: cap.free,
      labels: JSON.parse(w.labels) as Record<string, string>,
      agentVersion: w.agent_version,
      registeredAt: new Date(w.registered_at).toISOString(),
      lastSeenAt: new Date(w.last_seen).toISOString(),
      leases: this.store.leasesOf(w.id).map((l) => ({
        jobId: l.job_id,
        tenantId: l.tenant_id,
        lease: l.lease,
        gpuIndices: JSON.parse(l.gpu_indices) as number[],
        state: l.state,
        cancelRequested: l.cancel === 1,
      })),
    };
  }

  // ------------------------------------------------------------------ WebSocket channel to agents

  override async fetch(request: Request): Promise<Response> {
    const workerId = request.headers.get("x-gantry-worker") ?? "";
    const a = this.authed(workerId, request.headers.get("x-gantry-token-hash") ?? "");
    if (!a.ok) return new Response("unauthorized", { status: 401 });
    this.touch(a.w, Date.now());
    return this.channel.accept(workerId);
  }

  /** Agents only listen on the channel (their reports go over HTTP); a message from one is a keep-alive. */
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (message === "ping") ws.send("pong");
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
    if (due !== null && now - due > 2 * this.cfg.heartbeatSeconds * 1000) {
      const d = this.deadlines(now);
      this.sql.exec(
        "UPDATE workers SET suspect_at = ?, dead_at = ? WHERE state IN ('starting','alive','suspect')",
        d.suspect_at,
        d.dead_at,
      );
      console.warn(
        JSON.stringify({
          level: "warn",
          msg: "fleet shard was unavailable; worker leases extended",
          lateMs: now - due,
        }),
      );
    }
    for (const w of all<WorkerRow>(
      this.sql,
      "SELECT * FROM workers WHERE state IN ('starting','alive') AND suspect_at <= ?",
      now,
    )) {
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("UPDATE workers SET state = 'suspect' WHERE id = ?", w.id);
        this.store.bump(w.id);
        this.outbox.add({ kind: "worker", data: this.store.record(this.store.worker(w.id)!) });
      });
    }
    for (const w of all<WorkerRow>(
      this.sql,
      "SELECT * FROM workers WHERE state IN ('starting','alive','suspect') AND dead_at <= ?",
      now,
    )) {
      await this.loseLeases(this.store.leasesOf(w.id), "WorkerLost");
      this.ctx.storage.transactionSync(() => {
        this.sql.exec(
          "UPDATE workers SET state = 'dead', suspect_at = NULL, dead_at = NULL WHERE id = ?",
          w.id,
        );
        this.store.bump(w.id);
        this.outbox.add({ kind: "worker", data: this.store.record(this.store.worker(w.id)!) });
      });
    }
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

  private nextDue(now = Date.now()): number | null {
    const suspect = scalar<number>(
      this.sql,
      "SELECT min(suspect_at) FROM workers WHERE state IN ('starting','alive')",
    );
    const dead = scalar<number>(
      this.sql,
      "SELECT min(dead_at) FROM workers WHERE state IN ('starting','alive','suspect')",
    );
    const dirty = scalar<number>(this.sql, "SELECT count(*) FROM capacity_dirty") ? now + 1000 : null;
    const outboxDue = this.outbox.hasRows()
      ? now + (this.outbox.failures ? this.outbox.retryDelayMs() : this.cfg.outboxFlushMs)
      : null;
    return minTime(suspect, dead, dirty, outboxDue, this.mailbox.nextDue());
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

  private pushing: Promise<void> | null = null;

  /** Tell the scheduler what changed; versions let it ignore reports older than what it already knows. */
  private pushCapacity(): Promise<void> {
    if (!this.pushing) {
      this.pushing = (async () => {
        // Changes made while a push is in flight stay dirty and go out in the next round.
        for (let round = 0; round < 5; round++) {
          const dirty = all<{ worker_id: string }>(this.sql, "SELECT worker_id FROM capacity_dirty");
          if (dirty.length === 0) return;
          const snaps = dirty.map(({ worker_id }) => {
            const w = this.store.worker(worker_id);
            return w && LIVE.has(w.state)
              ? { ...this.store.capacity(w), removed: false as const }
              : {
                  workerId: worker_id,
                  shard: this.store.shard,
                  removed: true as const,
                  version: w?.version ?? 0,
                };
          });
          await schedulerStub(this.env).updateCapacity(snaps);
          for (const s of snaps) {
            const w = this.store.worker(s.workerId);
            if (!w || w.version === s.version) {
              this.sql.exec("DELETE FROM capacity_dirty WHERE worker_id = ?", s.workerId);
            }
          }
        }
      })().finally(() => {
        this.pushing = null;
      });
    }
    return this.pushing.catch(() => {});
  }
}

function toAssignment(l: LeaseRow): Assignment {
  const a = JSON.parse(l.assignment) as AssignmentSpec;
  return {
    jobId: l.job_id,
    lease: l.lease,
    gpuIndices: JSON.parse(l.gpu_indices) as number[],
    spec: { ...a.spec, tenantId: a.tenantId, gpuType: a.gpuType },
  };
}
