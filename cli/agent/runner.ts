// Runs one job as a child process and reports how it ended. The child leads its own process group
// (detached), so timeouts, cancels and drains kill everything the job forked, not just the first process:
// SIGTERM to the group, SIGKILL after a grace period if anything is still alive. With a watchdog, the
// group's leader is the wrapper of cli/agent/watchdog.ts, which also kills the group when this process
// dies or freezes. Nothing here sleeps on the normal path; an agent may start hundreds of short jobs per
// second.
import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";
import { setLongTimeout } from "../lib/backoff.ts";
import { findExecutable } from "./exec-path.ts";
import { groupAlive, signalGroup } from "./proctree.ts";
import { OutputTail } from "./tail.ts";
import { feedWatchdog, type WatchdogOptions, WRAPPER_SHELL, watchdogTools, wrapperArgs } from "./watchdog.ts";

/** Why the agent ended a job. LeaseLost: it could not prove to the control plane that it still holds it. */
export type KillReason = "Cancelled" | "Drained" | "Abandoned" | "Timeout" | "LeaseLost";

export interface RunOptions {
  command: string[];
  env: Record<string, string>;
  maxRuntimeSeconds?: number | undefined;
  /** Time between SIGTERM and SIGKILL. Default 5000. */
  killGraceMs?: number | undefined;
  tailBytes?: number | undefined;
  /** Each chunk of output as it arrives (the agent echoes it at debug level). */
  onOutput?: ((chunk: Buffer) => void) | undefined;
  /** Run under the dead man's switch; ignored where it cannot work (see watchdogTools). */
  watchdog?: WatchdogOptions | undefined;
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
  /** The watchdog killed the job because this agent stopped feeding it (it was frozen or overloaded). */
  watchdogFired: boolean;
}

export interface RunningProcess {
  /** Undefined when the command could not be started (the result then carries spawnError). */
  readonly pid: number | undefined;
  readonly result: Promise<RunResult>;
  /** Bytes of output seen so far (the live log upload sends the tail only when this moved). */
  readonly outputBytes: number;
  /** The current output tail, as the final report would carry it. */
  tailText(): string;
  /** Kills the whole process tree: SIGTERM then SIGKILL after the grace period, or SIGKILL at once. */
  kill(reason: KillReason, options?: { immediate?: boolean; graceMs?: number }): void;
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
  let stopFeeding: (() => void) | undefined;
  let watchdogFired = false;
  const tools = opts.watchdog ? watchdogTools() : null;
  const watchdog = tools ? opts.watchdog : undefined;

  const finish = () => {
    if (finished) return;
    finished = true;
    cancelRuntime?.();
    stopFeeding?.();
    if (killTimer) clearTimeout(killTimer);
    resolveResult({
      exitCode: spawnError ? spawnExitCode(spawnError.code) : exitCodeOf(exit),
      // The wrapper passes the command's status on as 128+N, as any shell does.
      signal: exit?.signal ?? (watchdog ? signalOfStatus(exit?.code) : null),
      killReason,
      spawnError,
      logTail: tail.text(),
      durationMs: Math.round(performance.now() - startedAt),
      watchdogFired,
    });
  };
  const notStarted = (err: { code: string; message: string }): RunningProcess => {
    spawnError = err;
    finish();
    return { pid: undefined, result, outputBytes: 0, tailText: () => "", kill: () => {} };
  };

  let child: ChildProcess;
  try {
    if (watchdog && tools) {
      // The wrapper's shell always starts; whether the command can is decided here, as spawn would.
      const found = findExecutable(opts.command[0] ?? "", opts.env.PATH);
      if (!("path" in found)) return notStarted(found);
      child = spawn(WRAPPER_SHELL, wrapperArgs(opts.command, watchdog, tools.sleep), {
        detached: true,
        stdio: ["ignore", "pipe", "pipe", "pipe"], // fd 3: keep-alives out, "watchdog fired" back
        env: opts.env,
      });
      stopFeeding = feedWatchdog(child, watchdog, () => {
        watchdogFired = true;
        killReason ??= "LeaseLost";
      });
    } else {
      child = spawn(opts.command[0]!, opts.command.slice(1), {
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: opts.env,
      });
    }
  } catch (err) {
    // Synchronous failures: e.g. a NUL byte in an argument or env value.
    return notStarted(toSpawnError(err));
  }
  const pid = child.pid;

  const terminateGroup = (immediate: boolean, grace = graceMs) => {
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
    }, grace);
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
    stopFeeding?.();
    if (pid !== undefined && groupAlive(pid)) {
      // The leader is done but left processes behind. The job's GPUs are about to be handed to another
      // job, so the leftovers go too (as Slurm does at the end of a job).
      terminateGroup(false);
      await waitUntil(() => !groupAlive(pid), graceMs + STRAGGLER_EXTRA_MS);
    }
    // Output may still be in the pipes; 'close' follows unless something outside the group holds them.
    await raceTimeout(closed, CLOSE_WAIT_MS);
    for (const stream of child.stdio) stream?.destroy();
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
    get outputBytes() {
      return tail.bytesSeen;
    },
    tailText: () => tail.text(),
    kill(reason, options) {
      if (finished || pid === undefined) return;
      killReason ??= reason;
      terminateGroup(options?.immediate === true, options?.graceMs);
    },
  };
}

function exitCodeOf(exit: { code: number | null; signal: NodeJS.Signals | null } | undefined): number {
  if (!exit) return 1;
  if (exit.code !== null) return exit.code;
  const n = exit.signal ? constants.signals[exit.signal] : undefined;
  return 128 + (n ?? 0);
}

const SIGNAL_NAMES = new Map(
  Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

function signalOfStatus(code: number | null | undefined): NodeJS.Signals | null {
  return code != null && code > 128 ? (SIGNAL_NAMES.get(code - 128) ?? null) : null;
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
