// Finding an executable the way execvp does (and libuv, which node's spawn uses): a name with a slash is
// used as is, anything else is looked up in PATH. Jobs run under the watchdog's shell, which always
// starts, so the agent checks the command itself first: a command that cannot start is still reported
// as a spawn error (ENOENT → exit 127, EACCES → 126), not as whatever the shell prints.
import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";

export type ExecLookup = { path: string } | { code: "ENOENT" | "EACCES"; message: string };

// glibc's execvp default when PATH is unset.
const DEFAULT_PATH = "/bin:/usr/bin";

export function findExecutable(name: string, pathEnv: string | undefined): ExecLookup {
  if (name === "") return notFound(name);
  if (name.includes("/")) return check(name) ?? notFound(name);
  let denied = false;
  for (const dir of (pathEnv ?? DEFAULT_PATH).split(":")) {
    const candidate = join(dir === "" ? "." : dir, name);
    const found = check(candidate);
    if (found && "path" in found) return found;
    if (found) denied = true;
  }
  return denied ? { code: "EACCES", message: `spawn ${name} EACCES` } : notFound(name);
}

/** The file as an executable, EACCES when it exists but cannot be run, undefined when it does not exist. */
function check(path: string): ExecLookup | undefined {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path, { throwIfNoEntry: false });
  } catch (err) {
    // ENOTDIR, ELOOP, ...: nothing to run there, as for execvp. A directory we may not search is EACCES.
    if ((err as NodeJS.ErrnoException).code !== "EACCES") return undefined;
    return { code: "EACCES", message: `spawn ${path} EACCES` };
  }
  if (!st) return undefined;
  if (st.isFile()) {
    try {
      accessSync(path, constants.X_OK);
      return { path };
    } catch {}
  }
  return { code: "EACCES", message: `spawn ${path} EACCES` };
}

function notFound(name: string): ExecLookup {
  return { code: "ENOENT", message: `spawn ${name} ENOENT` };
}
