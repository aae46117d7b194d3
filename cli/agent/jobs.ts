// The jobs this agent is running: starts assignments, ignores duplicates, kills on cancel/drain, and turns
// each process's end into the job update the control plane expects.
import type { Logger } from "../lib/log.ts";
import { buildJobEnv, inheritableEnv } from "./env.ts";
import type { Assignment, JobUpdate, Lease } from "./protocol.ts";
import { type KillReason, type RunningProcess, type RunResult, startProcess } from "./runner.ts";
import type { WatchdogOptions } from "./watchdog.ts";

export interface LocalJob {
  readonly assignment: Assignment;
  /** Registration the job was assigned under; jobs of an older one are killed after re-registering. */
  readonly epoch: number;
  readonly proc: RunningProcess;
  /** The lease is no longer ours: kill without reporting anything. */
  abandoned: boolean;
  /** Set when the agent fenced the job (killed it because it lost contact): the report's message. */
  leaseLost?: string;
  /** Output bytes already uploaded mid-run, and when (performance.now()). */
  uploadedBytes: number;
  uploadedAt: number;
}

export interface JobManagerOptions {
  logger: Logger;
  /** Every job update, in order, tagged with its registration epoch. */
  onUpdate(update: JobUpdate, epoch: number): void;
  /** A job's process ended (its GPUs are free). */
  onJobEnded(job: LocalJob, result: RunResult): void;
  baseEnv?: NodeJS.ProcessEnv;
  killGraceMs?: number;
  drainTimeoutSeconds?: number;
  /** GPU indices this host has; assignments naming others are logged (the server is trusted to place). */
  gpuIndices?: number[];
  /** Dead man's switch for every job started from now on (the agent sets it from the registration). */
  watchdog?: WatchdogOptions;
}

// Remember (jobId, lease) pairs already started, so a heartbeat answer that raced with the live channel (or
// with the job's own completion) does not start the same attempt twice. A retry has a new lease.
const SEEN_LIMIT = 20_000;

export class JobManager {
  private readonly jobs = new Map<string, LocalJob>();
  private readonly seen = new Set<string>();
  private emptyWaiters: (() => void)[] = [];
  private readonly baseEnv: Record<string, string>;
  private watchdog: WatchdogOptions | undefined;

  constructor(private readonly opts: JobManagerOptions) {
    this.baseEnv = inheritableEnv(opts.baseEnv ?? process.env);
    this.watchdog = opts.watchdog;
  }

  get size(): number {
    return this.jobs.size;
  }

  /** What the heartbeat lists under `running`: every process still executing for a current lease. */
  running(epoch: number): { jobId: string; lease: Lease }[] {
    const out: { jobId: string; lease: Lease }[] = [];
    for (const job of this.jobs.values()) {
      if (!job.abandoned && job.epoch === epoch)
        out.push({ jobId: job.assignment.jobId, lease: job.assignment.lease });
    }
    return out;
  }

  get(jobId: string): LocalJob | undefined {
    return this.jobs.get(jobId);
  }

  /** Starts an assignment unless it is already running or was already run. */
  start(a: Assignment, epoch: number): "started" | "duplicate" {
    const key = `${a.jobId}\u0000${String(a.lease)}`;
    if (this.jobs.has(a.jobId) || this.seen.has(key)) return "duplicate";
    this.remember(key);
    this.checkGpus(a);
    const log = this.opts.logger;
    const echo = log.enabled("debug")
      ? (chunk: Buffer) => log.debug("job output", { jobId: a.jobId, output: chunk.toString("utf8") })
      : undefined;
    const proc = startProcess({
      command: a.spec.command,
      env: buildJobEnv(this.baseEnv, a),
      maxRuntimeSeconds: a.spec.maxRuntimeSeconds,
      killGraceMs: this.opts.killGraceMs,
      onOutput: echo,
      watchdog: this.watchdog,
    });
    const job: LocalJob = {
      assignment: a,
      epoch,
      proc,
      abandoned: false,
      uploadedBytes: 0,
      uploadedAt: performance.now(),
    };
    this.jobs.set(a.jobId, job);
    if (proc.pid !== undefined) {
      log.info("job started", {
        jobId: a.jobId,
        lease: a.lease,
        pid: proc.pid,
        gpus: a.gpuIndices.join(","),
      });
      this.opts.onUpdate({ jobId: a.jobId, lease: a.lease, state: "running" }, epoch);
    }
    proc.result.then((result) => this.ended(job, result));
    return "started";
  }

  /**
   * "running" updates carrying the output tail of every running job (of registration `epoch`) that printed
   * something since its last upload at least `everyMs` ago, so `gantry logs --follow` sees output while the
   * job runs. `busy(jobId)` skips jobs that still have an update waiting: a slow link never piles them up.
   */
  logUpdates(
    epoch: number,
    everyMs: number,
    busy: (jobId: string) => boolean,
    now = performance.now(),
  ): JobUpdate[] {
    const out: JobUpdate[] = [];
    for (const job of this.jobs.values()) {
      if (job.abandoned || job.epoch !== epoch || job.leaseLost !== undefined) continue;
      const bytes = job.proc.outputBytes;
      if (bytes === job.uploadedBytes || now - job.uploadedAt < everyMs || busy(job.assignment.jobId))
        continue;
      job.uploadedBytes = bytes;
      job.uploadedAt = now;
      const { jobId, lease } = job.assignment;
      out.push({ jobId, lease, state: "running", logTail: job.proc.tailText() });
    }
    return out;
  }

  /** Kills a job the control plane cancelled; it is reported failed with reason Cancelled. */
  cancel(jobId: string): boolean {
    const job = this.jobs.get(jobId);
    if (!job) return false;
    this.opts.logger.info("cancelling job", { jobId });
    job.proc.kill("Cancelled");
    return true;
  }

  /** Kills a job whose lease is no longer ours, reporting nothing. `lease` narrows it to one attempt. */
  abandon(jobId: string, lease?: Lease): boolean {
    const job = this.jobs.get(jobId);
    if (!job || (lease !== undefined && job.assignment.lease !== lease)) return false;
    job.abandoned = true;
    job.proc.kill("Abandoned");
    return true;
  }

  /** Abandons every job of registrations older than `epoch`. */
  abandonOlderThan(epoch: number): number {
    let n = 0;
    for (const job of this.jobs.values()) {
      if (job.epoch < epoch && this.abandon(job.assignment.jobId)) n++;
    }
    return n;
  }

  /** Kills every job (drain timeout: reason Drained; shutdown: Abandoned, reporting nothing). */
  killAll(reason: KillReason, immediate = false): void {
    for (const job of this.jobs.values()) {
      if (reason === "Abandoned") job.abandoned = true;
      job.proc.kill(reason, { immediate });
    }
  }

  /** Sets the watchdog for jobs started from now on (each registration may bring another lease TTL). */
  setWatchdog(watchdog: WatchdogOptions | undefined): void {
    this.watchdog = watchdog;
  }

  /**
   * Kills every job still reported as ours because this agent cannot prove it still holds their leases;
   * they are reported failed with reason LeaseLost and `message`. Returns how many were newly fenced.
   */
  fence(message: string, graceMs?: number): number {
    let n = 0;
    for (const job of this.jobs.values()) {
      if (job.abandoned || job.leaseLost !== undefined) continue;
      job.leaseLost = message;
      job.proc.kill("LeaseLost", graceMs === undefined ? {} : { graceMs });
      n++;
    }
    return n;
  }

  whenEmpty(): Promise<void> {
    if (this.jobs.size === 0) return Promise.resolve();
    return new Promise((r) => this.emptyWaiters.push(r));
  }

  private ended(job: LocalJob, result: RunResult): void {
    const { jobId } = job.assignment;
    if (this.jobs.get(jobId) === job) this.jobs.delete(jobId);
    const update = job.abandoned
      ? undefined
      : terminalUpdate(job.assignment, result, this.opts.drainTimeoutSeconds, job.leaseLost);
    this.opts.logger.info("job ended", {
      jobId,
      exitCode: result.exitCode,
      ...(update ? { state: update.state } : { abandoned: true }),
      ...(update?.reason ? { reason: update.reason } : {}),
      durationMs: result.durationMs,
    });
    if (update) this.opts.onUpdate(update, job.epoch);
    this.opts.onJobEnded(job, result);
    if (this.jobs.size === 0) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const w of waiters) w();
    }
  }

  private remember(key: string): void {
    this.seen.add(key);
    if (this.seen.size > SEEN_LIMIT) {
      // Sets iterate in insertion order: the first key is the oldest.
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  private checkGpus(a: Assignment): void {
    const known = this.opts.gpuIndices;
    const unknown = known ? a.gpuIndices.filter((i) => !known.includes(i)) : [];
    const busy = new Set<number>();
    for (const other of this.jobs.values()) for (const i of other.assignment.gpuIndices) busy.add(i);
    const shared = a.gpuIndices.filter((i) => busy.has(i));
    if (unknown.length > 0 || shared.length > 0) {
      this.opts.logger.warn("assignment names GPUs that are unknown or busy; running it anyway", {
        jobId: a.jobId,
        unknown,
        busy: shared,
      });
    }
  }
}

/** The final update for a finished process. A kill by the agent decides the reason over the exit code. */
export function terminalUpdate(
  a: Assignment,
  r: RunResult,
  drainTimeoutSeconds?: number,
  leaseLost?: string,
): JobUpdate {
  const base = { jobId: a.jobId, lease: a.lease, exitCode: r.exitCode, logTail: r.logTail };
  if (r.spawnError) {
    return {
      ...base,
      state: "failed",
      reason: "SpawnError",
      message: `could not start ${JSON.stringify(a.spec.command[0])}: ${r.spawnError.message}`,
    };
  }
  switch (r.killReason) {
    case "Timeout":
      return {
        ...base,
        state: "failed",
        reason: "Timeout",
        message: `killed after exceeding maxRuntimeSeconds (${a.spec.maxRuntimeSeconds} s)`,
      };
    case "Cancelled":
      return { ...base, state: "failed", reason: "Cancelled", message: "killed: the job was cancelled" };
    case "Drained":
      return {
        ...base,
        state: "failed",
        reason: "Drained",
        message: `killed: the agent shut down and the job did not finish within the drain timeout${
          drainTimeoutSeconds !== undefined ? ` (${drainTimeoutSeconds} s)` : ""
        }`,
      };
    case "LeaseLost":
      // Not the job's fault: the control plane requeues it (if it has not already given the lease away).
      return {
        ...base,
        state: "failed",
        reason: "LeaseLost",
        message:
          leaseLost ??
          "killed by its watchdog: the agent sent no keep-alive for longer than the lease allows (it was frozen or overloaded)",
      };
    default:
      break;
  }
  if (r.exitCode === 0 && r.signal === null) return { ...base, state: "succeeded" };
  const message = r.signal ? `killed by signal ${r.signal}` : `exited with code ${r.exitCode}`;
  return { ...base, state: "failed", message };
}
