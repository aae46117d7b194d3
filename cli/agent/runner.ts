// Runs one job as a child process and reports how it ended. The child leads its own process group
// (detached), so timeouts, cancels and drains kill everything the job forked, not just the first process:
// SIGTERM to the group, SIGKILL after a grace period if anything is still alive. Nothing here sleeps on
// the normal path; an agent may start hundreds of short jobs per second.
import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";
import { setLongTimeout } from "../lib/backoff.ts";
import { groupAlive, signalGroup } from "./proctree.ts";
import { OutputTail } from "./tail.ts";

export type KillReason = "Cancelled" | "Drained" | "Abandoned" | "Timeout";

export interface RunOptions {
  command: string[];
  env: Record<string, string>;
  maxRuntimeSeconds?: number | undefined;
  /** Time between SIGTERM and SIGKILL. Default 5000. */
  killGraceMs?: number | undefined;
  tailBytes?: number | undefined;
  /** Each chunk of output as it arrives (the agent echoes it at debug level). */
  onOutput?: ((chunk: Buffer) => void) | undefined;
}

export interface RunResult {
  /** The exit status; 128+N when killed by signal N; 127/126 when the command could not start. */
  exitCode: number;
  signal: NodeJS.Signals | null;
  /** Set when the agent killed the job, saying why. The first reason wins. */
  killReason: KillReason | undefined;
  spawnError: { code: string; message: string } | undefined;
  logTail: string;
  durationMs: number;
}

export interface RunningProcess {
  /** Undefined when the command could not be started (the result then carries spawnError). */
  readonly pid: number | undefined;
  readonly result: Promise<RunResult>;
  /** Kills the whole process tree: SIGTERM then SIGKILL after the grace period, or SIGKILL at once. */
  kill(reason: KillReason, options?: { immediate?: boolean }): void;
}

const STRAGGLER_EXTRA_MS = 2000;
const CLOSE_WAIT_MS = 1000;

export function startProcess(opts: RunOptions): RunningProcess {
  const graceMs = opts.killGraceMs ?? 5000;
  const tail = new OutputTail(opts.tailBytes);
  const startedAt = performance.now();
  let resolveResult!: (r: RunResult) => void;
  const result = new Promise<RunResult>((r) => {
    resolveResult = r;
  });
  let killReason: KillReason | undefined;
  let spawnError: RunResult["spawnError"];
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let finished = false;
  let termSent = false;
  let killTimer: NodeJS.Timeout | undefined;
  let cancelRuntime: (() => void) | undefined;

  const finish = () => {
    if (finished) return;
    finished = true;
    cancelRuntime?.();
    if (killTimer) clearTimeout(killTimer);
    resolveResult({
      exitCode: spawnError ? spawnExitCode(spawnError.code) : exitCodeOf(exit),
      signal: exit?.signal ?? null,
      killReason,
      spawnError,
      logTail: tail.text(),
      durationMs: Math.round(performance.now() - startedAt),
    });
  };

  let child: ChildProcess;
  try {
    child = spawn(opts.command[0]!, opts.command.slice(1), {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: opts.env,
    });
  } catch (err) {
    // Synchronous failures: e.g. a NUL byte in an argument or env value.
    spawnError = toSpawnError(err);
    finish();
    return { pid: undefined, result, kill: () => {} };
  }
  const pid = child.pid;

  const terminateGroup = (immediate: boolean) => {
    if (pid === undefined || finished) return;
    if (immediate) {
      signalGroup(pid, "SIGKILL");
      return;
    }
    if (termSent) return;
    termSent = true;
    signalGroup(pid, "SIGTERM");
    killTimer = setTimeout(() => {
      if (groupAlive(pid)) signalGroup(pid, "SIGKILL");
    }, graceMs);
  };

  const onData = (chunk: Buffer) => {
    tail.push(chunk);
    opts.onOutput?.(chunk);
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const closed = new Promise<void>((r) => child.once("close", () => r()));

  child.on("error", (err) => {
    // With no pid the command never started (ENOENT, EACCES); otherwise exit/close still follow.
    if (pid === undefined) {
      spawnError = toSpawnError(err);
      finish();
    }
  });

  child.once("exit", async (code, signal) => {
    exit = { code, signal };
    cancelRuntime?.();
    if (pid !== undefined && groupAlive(pid)) {
      // The leader is done but left processes behind. The job's GPUs are about to be handed to another
      // job, so the leftovers go too (as Slurm does at the end of a job).
      terminateGroup(false);
      await waitUntil(() => !groupAlive(pid), graceMs + STRAGGLER_EXTRA_MS);
    }
    // Output may still be in the pipes; 'close' follows unless something outside the group holds them.
    await raceTimeout(closed, CLOSE_WAIT_MS);
    child.stdout?.destroy();
    child.stderr?.destroy();
    finish();
  });

  if (pid !== undefined && opts.maxRuntimeSeconds !== undefined) {
    cancelRuntime = setLongTimeout(() => {
      killReason ??= "Timeout";
      terminateGroup(false);
    }, opts.maxRuntimeSeconds * 1000);
  }

  return {
    pid,
    result,
    kill(reason, options) {
      if (finished || pid === undefined) return;
      killReason ??= reason;
      terminateGroup(options?.immediate === true);
    },
  };
}

function exitCodeOf(exit: { code: number | null; signal: NodeJS.Signals | null } | undefined): number {
  if (!exit) return 1;
  if (exit.code !== null) return exit.code;
  const n = exit.signal ? constants.signals[exit.signal] : undefined;
  return 128 + (n ?? 0);
}

// Shell conventions: 127 "command not found", 126 "found but cannot execute".
function spawnExitCode(code: string): number {
  return code === "EACCES" || code === "ENOEXEC" || code === "EISDIR" ? 126 : 127;
}

function toSpawnError(err: unknown): { code: string; message: string } {
  const e = err as NodeJS.ErrnoException;
  return { code: e?.code ?? "ESPAWN", message: e?.message ?? String(err) };
}

/** Polls `done` with a growing interval until it is true or `maxMs` passed. Only used for stragglers. */
async function waitUntil(done: () => boolean, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let step = 10;
  while (!done() && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, step));
    step = Math.min(step * 2, 200);
  }
}

function raceTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<void>((r) => {
    timer = setTimeout(r, ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
