// Self-fencing. The control plane declares a worker dead after leaseTtlSeconds without a heartbeat and
// runs its jobs again elsewhere. An agent that cannot get a heartbeat through must therefore stop its jobs
// before that can happen, or they would run twice at the same time: once it has gone `thresholdMs`
// (the TTL minus one heartbeat interval) without a completed heartbeat, `onLost` kills them. Shorter
// outages do nothing; jobs keep running and their updates wait in the queue.
//
// Time is measured on the monotonic clock from the moment the last successful heartbeat was *sent* (the
// control plane saw it no earlier), so a frozen agent notices on the first timer tick after it thaws.

import type { Logger } from "../lib/log.ts";
import type { JobManager } from "./jobs.ts";
import type { WatchdogOptions } from "./watchdog.ts";

export interface LeaseTerms {
  leaseTtlSeconds: number;
  heartbeatIntervalSeconds: number;
}

/** How long an agent may go without a heartbeat before it must assume its leases are gone. */
export function fenceAfterMs(terms: LeaseTerms): number {
  const ttl = terms.leaseTtlSeconds * 1000;
  // A TTL barely longer than the interval (a misconfiguration) would fence on every late heartbeat.
  return Math.max(ttl - terms.heartbeatIntervalSeconds * 1000, ttl / 2);
}

// Jobs killed for a lost lease must be gone before the control plane can start them elsewhere, so their
// SIGTERM→SIGKILL grace is at most half a heartbeat interval (the margin the fencing threshold leaves).
export function leaseKillGraceMs(terms: LeaseTerms, killGraceMs: number): number {
  return Math.min(killGraceMs, terms.heartbeatIntervalSeconds * 500);
}

/** How often the agent checks whether it must fence: well within an interval, at most once a second. */
export function fenceCheckMs(terms: LeaseTerms): number {
  return Math.min(1000, Math.max(10, terms.heartbeatIntervalSeconds * 250));
}

/**
 * Each job's dead man's switch. The agent feeds it its fencing deadline (LeaseFence.remainingMs) plus one
 * check interval, so a live agent fences first and reports properly; a frozen agent's jobs still die
 * before the TTL: deadline + check (≤ interval/4) + tick (≤ interval/8) + grace (≤ interval/2).
 */
export function jobWatchdog(terms: LeaseTerms, killGraceMs: number): WatchdogOptions {
  const timeoutMs = fenceAfterMs(terms);
  return {
    timeoutSeconds: timeoutMs / 1000,
    graceMs: leaseKillGraceMs(terms, killGraceMs),
    tickMs: Math.min(timeoutMs / 8, terms.heartbeatIntervalSeconds * 125),
  };
}

/** The message of a fenced job's LeaseLost report. */
export function leaseLostMessage(silentMs: number, terms: LeaseTerms): string {
  const silent = Math.round(silentMs / 100) / 10;
  return `killed: the agent lost contact with the control plane for ${silent} s (lease TTL ${terms.leaseTtlSeconds} s), so the job may already run elsewhere`;
}

/** Kills every job of an agent that lost contact; they are reported LeaseLost once it is back. */
export function fenceJobs(
  jobs: Pick<JobManager, "fence">,
  terms: LeaseTerms,
  silentMs: number,
  killGraceMs: number,
  log: Logger,
): void {
  const killed = jobs.fence(leaseLostMessage(silentMs, terms), leaseKillGraceMs(terms, killGraceMs));
  if (killed === 0) return;
  log.error("lost contact with the control plane: killing jobs so they cannot run twice (self-fencing)", {
    silentSeconds: Math.round(silentMs / 100) / 10,
    leaseTtlSeconds: terms.leaseTtlSeconds,
    killedJobs: killed,
    report: "failed, reason LeaseLost, once the control plane answers again",
  });
}

export interface LeaseFenceOptions {
  /** Called on every check while out of contact for longer than the threshold. */
  onLost(silentMs: number): void;
  now?: () => number;
}

export class LeaseFence {
  private lastOkAt = 0;
  private thresholdMs = Number.POSITIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: LeaseFenceOptions) {
    this.now = opts.now ?? (() => performance.now());
  }

  /** (Re)starts watching with a registration's terms; the registration itself counts as contact. */
  start(terms: LeaseTerms): void {
    this.thresholdMs = fenceAfterMs(terms);
    this.lastOkAt = this.now();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.check(), fenceCheckMs(terms));
  }

  /** A heartbeat sent at `sentAt` (a value of `now`) was answered. */
  ok(sentAt: number): void {
    if (sentAt > this.lastOkAt) this.lastOkAt = sentAt;
  }

  /** Milliseconds since the last proven contact. */
  get silentMs(): number {
    return this.now() - this.lastOkAt;
  }

  /** Milliseconds left until the agent must fence (what a job's watchdog may still wait for it). */
  get remainingMs(): number {
    return Math.max(0, this.thresholdMs - this.silentMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    const silent = this.silentMs;
    if (silent >= this.thresholdMs) this.opts.onLost(silent);
  }
}
