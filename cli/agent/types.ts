// The agent's programmatic interface: runAgent(options, runtime) → AgentHandle. Tests and benchmarks run
// agents in-process with these knobs; the command line uses the defaults.
import type { BackoffOptions } from "../lib/backoff.ts";
import type { Logger } from "../lib/log.ts";
import type { Assignment, GpuInfo, Registration } from "./protocol.ts";
import type { RunResult } from "./runner.ts";

export interface AgentRuntime {
  logger?: Logger;
  /** Aborting it is a graceful stop(), like SIGTERM. */
  signal?: AbortSignal;
  fetch?: typeof fetch;
  /** Skip discovery and offer these GPUs. */
  gpus?: GpuInfo[];
  nvidiaSmi?: string;
  /** Environment jobs inherit (default process.env). */
  baseEnv?: NodeJS.ProcessEnv;
  /** SIGTERM→SIGKILL grace for job process groups. Default 5000. */
  killGraceMs?: number;
  /** Run jobs under the dead man's switch of cli/agent/watchdog.ts. Default true. */
  jobWatchdog?: boolean;
  /** Shortest gap between change-triggered heartbeats. Default 100 ms, 1 s with the live channel up, 2 s in outages. */
  minHeartbeatGapMs?: number;
  /** How long a finishing agent waits for undelivered updates before giving up. Default 60 s. */
  flushTimeoutMs?: number;
  registerBackoff?: BackoffOptions;
  updateBackoff?: BackoffOptions;
  channelBackoff?: BackoffOptions;
  /** Default true. */
  liveChannel?: boolean;
  /** Send heartbeats over the live channel while it is connected (HTTP otherwise). Default true. */
  channelHeartbeats?: boolean;
  /** How long a channel heartbeat waits for its reply before HTTP. Default min(10 s, interval / 2). */
  channelHeartbeatTimeoutMs?: number;
  hooks?: {
    onRegistered?(reg: Registration): void;
    onJobStarted?(a: Assignment): void;
    onJobEnded?(jobId: string, result: RunResult): void;
  };
}

export interface AgentResult {
  /** 0 drained/stopped, 1 error or killed, 3 join token rejected. */
  exitCode: number;
  reason: "drained" | "stopped" | "killed" | "error";
  message?: string;
}

export interface AgentHandle {
  readonly done: Promise<AgentResult>;
  readonly workerId: string | undefined;
  readonly runningJobs: number;
  /** Graceful: stop taking work, let jobs finish (up to the drain timeout), report, deregister. */
  stop(): Promise<AgentResult>;
  /** Immediate: SIGKILL every job's process tree and finish without reporting. */
  kill(): Promise<AgentResult>;
  /** Last resort from a process 'exit' handler: SIGKILL all job process groups synchronously. */
  killProcessesSync(): void;
}
