// The job watchdog: a dead man's switch per job, so a job never outlives its agent. A killed agent (even
// kill -9) or a frozen one (SIGSTOP, VM pause) cannot kill anything itself, and the control plane runs
// the job again elsewhere once the lease expires. So each job runs under a tiny POSIX sh wrapper that
// leads the job's process group and kills that group as soon as the agent stops feeding it.
//
//   agent ══ fd 3 (socket) ══▶ wrapper (sh, the group leader; waits for the pipeline below)
//     { the command (foreground) ; "x <status>" }  ──pipe──▶  W: reads events, decides, kills
//       └ T: after a short delay, "t" every tick            ─┘  (writes "!" back on fd 3 when it
//          └ R: "f<budget>" per keep-alive line, "e" at EOF ─┘   kills a job the agent stopped feeding)
//
// Every few seconds the agent writes a keep-alive line: how many milliseconds its lease has left (the
// time until it would fence itself, cli/agent/fence.ts), so a frozen agent's jobs end when a cut-off
// agent's would. W spends that budget tick by tick and kills the group (SIGTERM, SIGKILL after a grace)
// when it runs out before a new line arrives, or at once on "e": the kernel closes the agent's end of
// the socket however the agent dies. When the command ends, its side of the pipeline stops T (which reaps
// R and its own `sleep`) and sends "x <status>"; W exits with that status, 128+N for signal N, so the
// wrapper's exit status is the command's. Nothing is left behind for an init that may not reap orphans.
//
// Why it is built this way:
// - Events travel through a pipe, not signals: bash loses trapped signals that arrive while another one
//   is being handled, and its `wait` then mislays children. The only trapped signal anywhere is the one
//   that stops T, sent once.
// - The command runs in the foreground, not with `&`: a non-interactive sh starts background commands
//   with SIGINT/SIGQUIT ignored (dash does not let them be reset), which would change how jobs behave.
// - `( exec "$@" )` runs the external program even when its name is also a shell builtin (echo, kill,
//   test, ...), with argv exactly as given, stdin /dev/null (from the agent) and fds 3-5 closed.
// - The shells around the command trap the signals a job may send to its own process group (and the
//   agent's SIGTERM) so they survive them while the command gets default handlers; T, R and W ignore
//   them. T stops its `sleep` with SIGKILL, which cannot be lost between fork and exec as a SIGTERM
//   caught by the not-yet-exec'd child can.
// - Short jobs end before T starts R or ticks: they cost one more exec (the shell), three forks (the
//   command's side of the pipeline, W, T) and one `sleep`.
// - The shells' own messages (bash prints "Terminated" for killed children) go to /dev/null; the job's
//   stdout and stderr are kept on fds 5 and 4. The only line the wrapper adds to the job's output is
//   W's note when it kills a job for want of keep-alives.
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import type { Duplex } from "node:stream";
import { findExecutable } from "./exec-path.ts";

export interface WatchdogOptions {
  /** The longest the job may run without hearing from the agent; also sizes the wrapper's ticks. */
  timeoutSeconds: number;
  /** What each keep-alive grants, in ms (the agent: the time its lease has left). Default: the timeout. */
  budgetMs?: (() => number) | undefined;
  /** SIGTERM → SIGKILL grace when the watchdog kills the job. */
  graceMs: number;
  /** How often the agent feeds the watchdog. Default: a quarter of the timeout, 100 ms to 5 s. */
  keepAliveMs?: number | undefined;
  /** How often the wrapper checks the budget (a `sleep` each). Default: an eighth of the timeout. */
  tickMs?: number | undefined;
}

export const WATCHDOG_FIRED = "!";

const SIGNALS = "HUP INT QUIT TERM USR1 USR2 ALRM";

// $1 delay before watching and $2 tick (seconds, decimals allowed), $3 tick in ms, $4 initial budget in ms,
// $5 grace (seconds), $6 absolute path of sleep; then the command. A budget line adds one tick: ticks do
// not start when the line arrives, so W kills between one and two ticks' worth after the budget, never
// before it.
export const WRAPPER_SCRIPT = `exec 4>&2 2>/dev/null 5>&1
trap : ${SIGNALS}
d=$1 p=$2 q=$3 m=$4 g=$5 sleep=$6
shift 6
{
  trap : ${SIGNALS}
  (
    trap '' ${SIGNALS}
    s= r= stop=
    trap 'stop=1; [ -z "$s" ] || kill -9 "$s"' 40
    nap() {
      "$sleep" "$1" & s=$!
      [ -z "$stop" ] || kill -9 "$s"
      wait "$s"
      s=
    }
    nap "$d"
    [ -n "$stop" ] || {
      (
        while IFS= read -r l <&3; do echo "f$l"; done
        echo e
      ) & r=$!
      while nap "$p"; [ -z "$stop" ]; do echo t; done
      kill -9 "$r"
    }
    wait
  ) & k=$!
  ( exec "$@" >&5 2>&4 3<&- 4>&- 5>&- )
  x=$?
  kill -40 "$k"
  while :; do wait; [ $? -gt 128 ] || break; done
  echo "x $x"
} | {
  trap '' ${SIGNALS} PIPE
  fire() { kill -TERM -$$; "$sleep" "$g"; kill -KILL -$$; }
  while IFS= read -r ev; do
    case $ev in
      f*) case \${ev#f} in '' | *[!0-9]*) ;; *) m=$((\${ev#f} + q)) ;; esac ;;
      t)
        m=$((m - q))
        [ "$m" -le 0 ] || continue
        echo '${WATCHDOG_FIRED}' >&3
        echo "gantry-agent: the agent stopped sending keep-alives and its lease ran out; killing the job" >&4
        fire ;;
      e) fire ;;
      x*) exit "\${ev#x }" ;;
    esac
  done
}
`;

export const WRAPPER_SHELL = "/bin/sh";

let tools: { sleep: string } | null | undefined;

/**
 * The programs the wrapper needs, found once on the agent's own PATH (a job's PATH may lack them).
 * Null where the watchdog cannot work: it needs Linux (its stop signal is a real-time signal).
 */
export function watchdogTools(): { sleep: string } | null {
  if (tools !== undefined) return tools;
  const sleep = findExecutable("sleep", process.env.PATH);
  tools =
    process.platform === "linux" && existsSync(WRAPPER_SHELL) && "path" in sleep
      ? { sleep: sleep.path }
      : null;
  return tools;
}

/** The argv that runs `command` under the wrapper. */
export function wrapperArgs(command: string[], wd: WatchdogOptions, sleepPath: string): string[] {
  const timeoutMs = wd.timeoutSeconds * 1000;
  // Watching starts after a short delay: most short jobs are over before then and cost no more.
  const delayMs = Math.min(1000, timeoutMs / 4);
  const tickMs = Math.max(20, Math.round(wd.tickMs ?? timeoutMs / 8));
  return [
    "-c",
    WRAPPER_SCRIPT,
    "gantry-job",
    seconds(delayMs),
    seconds(tickMs),
    String(tickMs),
    String(Math.max(0, Math.round(budget(wd) - delayMs)) + tickMs),
    seconds(wd.graceMs),
    sleepPath,
    ...command,
  ];
}

function budget(wd: WatchdogOptions): number {
  return Math.max(0, wd.budgetMs ? wd.budgetMs() : wd.timeoutSeconds * 1000);
}

/**
 * Feeds the wrapper of `child` (spawned with a 4th stdio pipe) until the returned function is called;
 * `onFired` runs if the wrapper reports that it killed the job for want of keep-alives.
 */
export function feedWatchdog(child: ChildProcess, wd: WatchdogOptions, onFired: () => void): () => void {
  const socket = child.stdio[3] as Duplex;
  socket.on("error", () => {}); // EPIPE when the wrapper is already gone: its exit is reported anyway
  socket.on("data", (chunk: Buffer) => {
    if (chunk.includes(WATCHDOG_FIRED)) onFired();
  });
  // A few keep-alives per timeout, so one late write never kills a job; no point in more than 10 a second.
  const everyMs = wd.keepAliveMs ?? Math.min(5000, Math.max(100, (wd.timeoutSeconds * 1000) / 4));
  const timer = setInterval(() => socket.write(`${Math.round(budget(wd))}\n`), Math.max(100, everyMs));
  return () => clearInterval(timer);
}

// sleep(1) takes decimal seconds ("0.25", "20"); millisecond precision is plenty.
function seconds(ms: number): string {
  return String(Math.max(0, Math.round(ms)) / 1000);
}
