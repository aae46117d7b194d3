// The end of an agent's life, after its last job ended (drained by the control plane, or stopped by a
// signal): deliver what is still queued, stop heartbeating, and deregister so the worker does not linger
// as "dead" in the fleet. Every network step is best effort: a shutdown must not hang on an outage.
import { setLongTimeout, withTimeout } from "../lib/backoff.ts";
import { CliError, describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { LiveChannel } from "./channel.ts";
import type { ControlPlaneClient } from "./client.ts";
import type { HeartbeatPacer } from "./heartbeat.ts";
import type { JobManager } from "./jobs.ts";
import type { Registration } from "./protocol.ts";
import type { AgentResult } from "./types.ts";
import type { UpdateQueue } from "./updates.ts";

/** Tells the control plane to stop assigning work here (SIGTERM path). Failures are ignored. */
export function announceDrain(
  client: ControlPlaneClient,
  reg: Registration,
  signal: AbortSignal,
  log: Logger,
): void {
  client.drain(reg, signal).catch((err) => {
    log.debug("drain call failed (ignored)", { error: describeError(err) });
  });
}

/** After --drain-timeout, jobs still running are killed so a stopping agent cannot hang forever. */
export function armDrainTimeout(
  jobs: () => JobManager | undefined,
  seconds: number,
  log: Logger,
): () => void {
  return setLongTimeout(() => {
    const running = jobs();
    if (!running || running.size === 0) return;
    log.warn("drain timeout reached; killing remaining jobs", { runningJobs: running.size });
    running.killAll("Drained");
  }, seconds * 1000);
}

export interface WrapUpContext {
  client: ControlPlaneClient;
  reg: Registration | undefined;
  queue: UpdateQueue;
  pacer: HeartbeatPacer;
  channel: LiveChannel | undefined;
  log: Logger;
  signal: AbortSignal;
  flushTimeoutMs: number;
}

/** Flushes updates (heartbeats keep carrying them meanwhile), then stops heartbeats and deregisters. */
export async function wrapUp(ctx: WrapUpContext): Promise<void> {
  ctx.pacer.kick();
  const flushed = await withTimeout(ctx.queue.whenEmpty(), ctx.flushTimeoutMs);
  if (ctx.signal.aborted) return;
  if (!flushed) ctx.log.error("giving up on undelivered job updates", { pending: ctx.queue.size });
  await ctx.pacer.stop();
  ctx.channel?.close();
  if (ctx.reg) {
    await ctx.client.deregister(ctx.reg, ctx.signal).catch((err) => {
      ctx.log.debug("deregister failed (ignored)", { error: describeError(err) });
    });
  }
}

/** An error that ends the agent: logged once, and its exit code (a CliError carries its own). */
export function failed(err: unknown, log: Logger): AgentResult {
  const message = err instanceof CliError ? err.message : `agent failed: ${describeError(err)}`;
  log.error(message);
  return { exitCode: err instanceof CliError ? err.exitCode : 1, reason: "error", message };
}
