// The agent's control loop: register, keep heartbeating, start what the control plane assigns (from the
// live channel or a heartbeat answer), report every job through the update queue, and drain on request.
// Heartbeats go over the live channel while it is up and over HTTP otherwise (channel-heartbeat.ts).
import { ApiError } from "../lib/http.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import { acceptAssignments } from "./assignments.ts";
import { LiveChannel } from "./channel.ts";
import { channelReplyTimeoutMs, HeartbeatSender } from "./channel-heartbeat.ts";
import { ControlPlaneClient, statusOutcome } from "./client.ts";
import { fenceCheckMs, fenceJobs, jobWatchdog, LeaseFence } from "./fence.ts";
import { discoverGpus } from "./gpus.ts";
import { HeartbeatPacer } from "./heartbeat.ts";
import { JobManager } from "./jobs.ts";
import type { AgentOptions } from "./options.ts";
import type { ChannelMessage, GpuInfo, JobUpdate, Registration } from "./protocol.ts";
import { AbortedError, registerWithRetry } from "./register.ts";
import type { RunResult } from "./runner.ts";
import { announceDrain, armDrainTimeout, failed, wrapUp } from "./shutdown.ts";
import type { AgentHandle, AgentResult, AgentRuntime } from "./types.ts";
import { type SendOutcome, UpdateQueue } from "./updates.ts";
import { agentVersion } from "./version.ts";
import { watchdogTools } from "./watchdog.ts";

export type { AgentHandle, AgentResult, AgentRuntime } from "./types.ts";

type Mode = "starting" | "active" | "draining" | "stopping" | "finished";

export function runAgent(options: AgentOptions, runtime: AgentRuntime = {}): AgentHandle {
  return new Agent(options, runtime).handle();
}

class Agent {
  private mode: Mode = "starting";
  private reg: Registration | undefined;
  private epoch = 0;
  private reregistering: AbortController | undefined;
  private finishing = false;
  private cancelDrainTimer: (() => void) | undefined;
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private readonly client: ControlPlaneClient;
  private readonly queue: UpdateQueue;
  private readonly pacer: HeartbeatPacer;
  private readonly heartbeats: HeartbeatSender;
  private readonly fence: LeaseFence;
  private jobs: JobManager | undefined;
  private gpus: GpuInfo[] = [];
  private channel: LiveChannel | undefined;
  private resolveDone!: (r: AgentResult) => void;
  private readonly done = new Promise<AgentResult>((r) => {
    this.resolveDone = r;
  });

  constructor(
    private readonly opts: AgentOptions,
    private readonly rt: AgentRuntime,
  ) {
    this.log = rt.logger ?? createLogger({ level: opts.logLevel });
    this.client = new ControlPlaneClient(opts.url, {
      userAgent: `gantry-agent/${agentVersion()}`,
      ...(rt.fetch ? { fetch: rt.fetch } : {}),
    });
    this.queue = new UpdateQueue({
      send: (u, tag) => this.sendStatus(u, tag),
      onRejected: (u, code) => this.onRejected(u, code),
      onUnauthorized: () => void this.reregister("status call answered 401"),
      logger: this.log,
      ...(rt.updateBackoff ? { backoff: rt.updateBackoff } : {}),
    });
    this.heartbeats = new HeartbeatSender({
      client: this.client,
      queue: this.queue,
      logger: this.log,
      signal: this.abort.signal,
      channel: () => (rt.channelHeartbeats === false ? undefined : this.channel),
      timeoutMs: (reg) => rt.channelHeartbeatTimeoutMs ?? channelReplyTimeoutMs(reg),
      current: (epoch) => epoch === this.epoch && !this.reregistering,
    });
    this.pacer = new HeartbeatPacer({
      intervalMs: 10_000,
      // Change-triggered heartbeats matter most when the live channel is down; during an outage they
      // would only hammer a struggling control plane.
      minGapMs: () =>
        rt.minHeartbeatGapMs ?? (this.heartbeats.isFailing ? 2000 : this.channel?.connected ? 1000 : 100),
      beat: () => this.beat(),
    });
    this.fence = new LeaseFence({ onLost: (silentMs) => this.leaseLost(silentMs) });
    rt.signal?.addEventListener("abort", () => void this.stop(), { once: true });
    void this.main().then((r) => this.finish(r));
  }

  handle(): AgentHandle {
    const workerId = () => this.reg?.workerId;
    const runningJobs = () => this.jobs?.size ?? 0;
    return {
      done: this.done,
      get workerId() {
        return workerId();
      },
      get runningJobs() {
        return runningJobs();
      },
      stop: () => this.stop(),
      kill: () => this.kill(),
      killProcessesSync: () => this.jobs?.killAll("Abandoned", true),
    };
  }

  private async main(): Promise<AgentResult | undefined> {
    try {
      const gpus =
        this.rt.gpus ??
        (await discoverGpus({
          gpus: this.opts.gpus,
          gpuType: this.opts.gpuType,
          hostname: this.opts.hostname,
          ...(this.rt.nvidiaSmi ? { nvidiaSmi: this.rt.nvidiaSmi } : {}),
        }));
      this.log.info("GPUs found", {
        count: gpus.length,
        gpus: gpus.map((g) => `${g.index}:${g.type}`).join(" "),
      });
      this.jobs = new JobManager({
        logger: this.log,
        onUpdate: (u, epoch) => this.queue.push(u, epoch),
        onJobEnded: (job, result) => this.onJobEnded(job.assignment.jobId, result),
        baseEnv: this.rt.baseEnv ?? process.env,
        killGraceMs: this.rt.killGraceMs,
        drainTimeoutSeconds: this.opts.drainTimeoutSeconds,
        gpuIndices: gpus.map((g) => g.index),
      });
      if (this.rt.jobWatchdog !== false && !watchdogTools()) {
        this.log.error(
          "job watchdog unavailable (it needs Linux, /bin/sh and sleep): jobs of an agent that crashes or freezes keep running",
        );
      }
      this.gpus = gpus;
      const reg = await registerWithRetry(this.client, this.opts.joinToken, this.registerBody(), {
        logger: this.log,
        signal: this.abort.signal,
        ...(this.rt.registerBackoff ? { backoff: this.rt.registerBackoff } : {}),
      });
      // Stopped while the registration was on its way: never start work.
      if (this.mode === "stopping") return { exitCode: 0, reason: "stopped" };
      if (this.mode !== "starting") return undefined; // killed meanwhile
      this.mode = "active";
      this.adopt(reg);
      return undefined; // the agent now runs until stop(), kill(), drain or a fatal error
    } catch (err) {
      if (err instanceof AbortedError) return { exitCode: 0, reason: "stopped" };
      return failed(err, this.log);
    }
  }

  private registerBody() {
    return {
      hostname: this.opts.hostname,
      gpus: this.gpus,
      labels: this.opts.labels,
      agentVersion: agentVersion(),
    };
  }

  /** Starts using a (new) registration: heartbeats, live channel, update delivery. */
  private adopt(reg: Registration): void {
    this.reg = reg;
    this.epoch++;
    this.log.info("registered", {
      workerId: reg.workerId,
      poolId: reg.poolId,
      heartbeatIntervalSeconds: reg.heartbeatIntervalSeconds,
    });
    this.fence.start(reg);
    this.jobs?.setWatchdog(
      this.rt.jobWatchdog === false
        ? undefined
        : {
            ...jobWatchdog(reg, this.rt.killGraceMs ?? 5000),
            budgetMs: () => this.fence.remainingMs + fenceCheckMs(reg),
          },
    );
    this.pacer.setInterval(reg.heartbeatIntervalSeconds * 1000);
    this.pacer.start();
    this.pacer.kick();
    if (this.rt.liveChannel !== false) {
      this.channel = new LiveChannel({
        url: this.client.channelUrl(reg),
        token: reg.token,
        logger: this.log,
        onMessage: (m) => this.onChannelMessage(m),
        ...(this.rt.channelBackoff ? { backoff: this.rt.channelBackoff } : {}),
      });
      this.channel.start();
    }
    this.queue.resume();
    this.rt.hooks?.onRegistered?.(reg);
  }

  private async beat(): Promise<void> {
    const reg = this.reg;
    const jobs = this.jobs;
    if (!reg || !jobs || this.reregistering || this.mode === "finished") return;
    const epoch = this.epoch;
    this.uploadLogs(jobs, epoch);
    const out = await this.heartbeats.exchange(reg, epoch, jobs.running(epoch));
    if (!out.ok) {
      const err = out.error; // other failures are logged by the sender
      // A 401/404 for an old registration must not start another re-registration.
      if (epoch === this.epoch && err instanceof ApiError && (err.status === 401 || err.status === 404))
        void this.reregister(`heartbeat over ${out.via} answered ${err.status}`);
      return;
    }
    this.queue.markReachable();
    if (epoch !== this.epoch) return; // re-registered meanwhile: the answer is for the old worker id
    this.fence.ok(out.sentAt); // the control plane saw this heartbeat no earlier than sentAt
    const res = out.response;
    for (const jobId of res.cancel) jobs.cancel(jobId);
    if (res.drain) this.serverDrain("heartbeat");
    this.startAssignments(res.assignments);
    if (out.batchFull) this.pacer.kick(); // more updates are waiting than fit in one heartbeat
  }

  /** Running jobs' output tails, at most every --log-interval per job, while the control plane answers. */
  private uploadLogs(jobs: JobManager, epoch: number): void {
    const everyMs = (this.opts.logIntervalSeconds ?? 15) * 1000;
    if (everyMs <= 0 || this.queue.isFailing) return;
    for (const u of jobs.logUpdates(epoch, everyMs, (id) => this.queue.has(id))) this.queue.push(u, epoch);
  }

  /** Self-fencing (cli/agent/fence.ts): no heartbeat got through for too long; stop every job. */
  private leaseLost(silentMs: number): void {
    if (!this.reg || !this.jobs || this.mode === "finished") return;
    fenceJobs(this.jobs, this.reg, silentMs, this.rt.killGraceMs ?? 5000, this.log);
  }

  private onChannelMessage(msg: ChannelMessage): void {
    if (this.reregistering || !this.jobs) return;
    if (msg.type === "assignments") this.startAssignments(msg.assignments);
    else if (msg.type === "cancel") for (const id of msg.jobIds) this.jobs.cancel(id);
    else if (msg.type === "drain") this.serverDrain("live channel");
  }

  private startAssignments(raw: unknown[]): void {
    if (!this.jobs) return;
    acceptAssignments(raw, {
      jobs: this.jobs,
      epoch: this.epoch,
      accepting: this.mode === "active",
      log: this.log,
      report: (u) => this.queue.push(u, this.epoch),
      ...(this.rt.hooks?.onJobStarted ? { onStarted: this.rt.hooks.onJobStarted } : {}),
    });
  }

  private onJobEnded(jobId: string, result: RunResult): void {
    this.rt.hooks?.onJobEnded?.(jobId, result);
    this.pacer.kick(); // GPUs freed: tell the control plane soon, even without the live channel
    this.checkIdle();
  }

  private async sendStatus(update: JobUpdate, tag: number): Promise<SendOutcome> {
    const reg = this.reg;
    if (!reg || tag !== this.epoch) return { kind: "rejected", code: "OldRegistration" };
    try {
      await this.client.status(reg, update, this.abort.signal);
      return { kind: "ok" };
    } catch (err) {
      return statusOutcome(err);
    }
  }

  private onRejected(update: JobUpdate, code: string): void {
    const killed = this.jobs?.abandon(update.jobId, update.lease) ?? false;
    this.log.warn("control plane refused a job update; dropping it", {
      jobId: update.jobId,
      state: update.state,
      code,
      ...(killed ? { action: "killing the job: its lease is no longer valid" } : {}),
    });
  }

  /** The control plane forgot this worker (401/404): register again, then drop the old registration's work. */
  private async reregister(why: string): Promise<void> {
    if (this.reregistering || this.mode === "finished" || !this.jobs) return;
    const ctl = new AbortController();
    this.reregistering = ctl;
    this.log.warn("the control plane no longer knows this worker; registering again", {
      workerId: this.reg?.workerId,
      why,
    });
    this.queue.pause();
    this.channel?.close();
    try {
      if (this.mode !== "active") throw new AbortedError(); // draining: no point in coming back
      const reg = await registerWithRetry(this.client, this.opts.joinToken, this.registerBody(), {
        logger: this.log,
        signal: AbortSignal.any([ctl.signal, this.abort.signal]),
        ...(this.rt.registerBackoff ? { backoff: this.rt.registerBackoff } : {}),
      });
      this.adopt(reg);
      // The old leases were requeued elsewhere: kill those jobs and forget their updates.
      const killed = this.jobs.abandonOlderThan(this.epoch);
      const dropped = this.queue.dropWhere((e) => e.tag < this.epoch);
      if (killed + dropped > 0)
        this.log.warn("dropped the old registration's work", { killedJobs: killed, droppedUpdates: dropped });
    } catch (err) {
      if (!(err instanceof AbortedError)) {
        this.jobs.killAll("Abandoned", true);
        this.finish(failed(err, this.log));
        return;
      }
      // Stopping while re-registering: the leases are void, nothing can be reported.
      this.jobs.killAll("Abandoned");
      this.queue.dropWhere(() => true);
      this.queue.resume();
    } finally {
      this.reregistering = undefined;
    }
    this.checkIdle();
  }

  private serverDrain(source: string): void {
    if (this.mode !== "active") return;
    this.mode = "draining";
    this.log.info("the control plane asked this worker to drain: no new work, running jobs finish", {
      source,
      runningJobs: this.jobs?.size ?? 0,
    });
    this.checkIdle();
  }

  private stop(): Promise<AgentResult> {
    if (this.mode === "finished" || this.mode === "stopping") return this.done;
    if (this.mode === "starting") {
      this.mode = "stopping";
      this.abort.abort(); // still registering: nothing to drain
      return this.done;
    }
    this.mode = "stopping";
    const reg = this.reg;
    this.log.info("stopping: no new work; waiting for running jobs", {
      runningJobs: this.jobs?.size ?? 0,
      drainTimeoutSeconds: this.opts.drainTimeoutSeconds,
    });
    this.reregistering?.abort();
    if (reg) announceDrain(this.client, reg, this.abort.signal, this.log);
    this.cancelDrainTimer = armDrainTimeout(() => this.jobs, this.opts.drainTimeoutSeconds, this.log);
    this.checkIdle();
    return this.done;
  }

  private kill(): Promise<AgentResult> {
    if (this.mode === "finished") return this.done;
    this.log.warn("killing all jobs and exiting now", { runningJobs: this.jobs?.size ?? 0 });
    this.jobs?.killAll("Abandoned", true);
    this.finish({ exitCode: 1, reason: "killed" });
    return this.done;
  }

  /** Once draining/stopping and no job runs: deliver what is queued, deregister, finish. */
  private checkIdle(): void {
    if ((this.mode !== "draining" && this.mode !== "stopping") || this.finishing || this.reregistering)
      return;
    if (!this.jobs || this.jobs.size > 0) return;
    this.finishing = true;
    void this.finishGracefully();
  }

  private async finishGracefully(): Promise<void> {
    await wrapUp({
      client: this.client,
      reg: this.reg,
      queue: this.queue,
      pacer: this.pacer,
      channel: this.channel,
      log: this.log,
      signal: this.abort.signal,
      flushTimeoutMs: this.rt.flushTimeoutMs ?? 60_000,
    });
    this.log.info("stopped", { reason: "drained" });
    this.finish({ exitCode: 0, reason: "drained" });
  }

  /** Releases everything; the first result wins. */
  private finish(result: AgentResult | undefined): void {
    if (!result || this.mode === "finished") return;
    this.mode = "finished";
    this.abort.abort();
    this.cancelDrainTimer?.();
    this.fence.stop();
    this.queue.close();
    this.channel?.close();
    void this.pacer.stop();
    this.resolveDone(result);
  }
}
