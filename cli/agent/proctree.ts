// Process-group helpers. Each job runs as the leader of its own process group (spawned detached), so the
// whole tree it forks can be signalled at once with kill(-pgid). Checking whether a group is still alive
// needs care: in containers whose PID 1 does not reap orphans, exited grandchildren linger as zombies and
// kill(-pgid, 0) keeps succeeding, so on Linux /proc decides whether a live (non-zombie) member remains.
import { readdirSync, readFileSync } from "node:fs";

/** Sends `signal` to every process in the group; false when the group no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** True while some process of the group is alive (zombies do not count). */
export function groupAlive(pgid: number): boolean {
  // Fast path, and the whole answer on systems without /proc: ESRCH means nobody is left.
  if (!signalGroup(pgid, 0)) return false;
  if (process.platform !== "linux") return true;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return true;
  }
  for (const name of entries) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const stat = readStat(name);
    if (stat && stat.pgrp === pgid && stat.state !== "Z" && stat.state !== "X") return true;
  }
  return false;
}

/** State letter ("R", "S", "Z", ...) of one process, or null when it is gone. */
export function processState(pid: number): string | null {
  return readStat(String(pid))?.state ?? null;
}

function readStat(pid: string): { state: string; pgrp: number } | null {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses, so split after the last ')'.
  const fields = raw.slice(raw.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", pgrp: Number(fields[2]) };
}
