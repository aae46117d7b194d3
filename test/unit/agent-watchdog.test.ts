// The job watchdog (cli/agent/watchdog.ts) with real processes: a job must not outlive the agent that
// feeds it, whether the agent dies (kill -9: its end of the pipe closes) or freezes (no keep-alives),
// and a job whose agent is healthy must not notice the wrapper at all. "Gone" is checked in /proc,
// ignoring zombies: PID 1 in CI containers does not always reap orphans.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Duplex } from "node:stream";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { terminalUpdate } from "../../cli/agent/jobs.ts";
import { groupAlive, processState } from "../../cli/agent/proctree.ts";
import { startProcess } from "../../cli/agent/runner.ts";
import { WATCHDOG_FIRED, WRAPPER_SHELL, watchdogTools, wrapperArgs } from "../../cli/agent/watchdog.ts";
import { until } from "./agent-fake-control-plane.ts";

const PATH_ONLY = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
const dir = mkdtempSync(join(tmpdir(), "gantry-watchdog-"));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  children.length = 0;
});

const alive = (pid: number) => {
  const s = processState(pid);
  return s !== null && s !== "Z" && s !== "X";
};

/** Every process of the group, zombies included. */
function groupMembers(pgid: number): { pid: number; state: string }[] {
  const out: { pid: number; state: string }[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === pgid) out.push({ pid: Number(name), state: fields[0]! });
  }
  return out;
}

async function pidsFrom(path: string, count: number): Promise<number[]> {
  let pids: number[] = [];
  await until(() => {
    try {
      pids = readFileSync(path, "utf8").split(/\s+/).filter(Boolean).map(Number);
    } catch {}
    return pids.length >= count;
  }, `${count} pids in ${path}`);
  return pids;
}

// A job that leaves a tree behind: a grandchild re-parented to init by a double fork (still in the job's
// process group), one that ignores SIGTERM (only SIGKILL ends it), and the job's own shell.
function treeJob(pidFile: string): string[] {
  return [
    "sh",
    "-c",
    `(sleep 60 & echo $! >> ${pidFile}); (trap '' TERM; exec sleep 61) & echo $! >> ${pidFile}; echo $$ >> ${pidFile}; sleep 62`,
  ];
}

describe.skipIf(!watchdogTools())("the job watchdog", () => {
  it("kills the job's whole tree when the agent feeding it is killed with SIGKILL", async () => {
    const pidFile = join(dir, "kill9.pids");
    // The stand-in agent: a separate node process running the real runner, feeding as the agent does.
    const fakeAgent = join(dir, "fake-agent.mts");
    const runner = pathToFileURL(resolve(import.meta.dirname, "../../cli/agent/runner.ts")).href;
    writeFileSync(
      fakeAgent,
      `import { startProcess } from ${JSON.stringify(runner)};
const p = startProcess({ command: ${JSON.stringify(treeJob(pidFile))}, env: ${JSON.stringify(PATH_ONLY)},
  watchdog: { timeoutSeconds: 30, graceMs: 300 } });
console.log(p.pid);
`,
    );
    const agent = spawn(process.execPath, ["--import", "tsx", fakeAgent], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(agent);
    let out = "";
    agent.stdout!.on("data", (d) => {
      out += d;
    });
    await until(() => out.includes("\n"), "the fake agent's job pid", 15_000);
    const leader = Number(out.trim());
    const pids = await pidsFrom(pidFile, 3);
    expect(pids.every(alive)).toBe(true);
    expect(alive(leader)).toBe(true);

    const t0 = Date.now();
    agent.kill("SIGKILL");
    // Noticed within a second (the wrapper starts reading after min(1 s, timeout/4)), then TERM, and
    // KILL for the grandchild that ignores TERM after the 300 ms grace.
    await until(() => !groupAlive(leader), "the job's process group gone", 5000);
    expect(Date.now() - t0).toBeLessThan(4000);
    expect([leader, ...pids].filter(alive)).toEqual([]);
  });

  it("ends a job whose agent stopped sending keep-alives (frozen), and says so", async () => {
    const pidFile = join(dir, "frozen.pids");
    const t0 = Date.now();
    const p = startProcess({
      command: treeJob(pidFile),
      env: PATH_ONLY,
      // A keep-alive period far beyond the timeout: the wrapper sees an agent that stopped feeding it.
      watchdog: { timeoutSeconds: 0.5, graceMs: 200, keepAliveMs: 60_000 },
    });
    const pids = await pidsFrom(pidFile, 3);
    const r = await p.result;
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(500);
    expect(took).toBeLessThan(3000);
    expect(r).toMatchObject({ killReason: "LeaseLost", watchdogFired: true });
    expect(r.logTail).toBe(
      "gantry-agent: the agent stopped sending keep-alives and its lease ran out; killing the job\n",
    );
    expect([p.pid!, ...pids].filter(alive)).toEqual([]);
    expect(groupAlive(p.pid!)).toBe(false);
    const update = terminalUpdate(
      { jobId: "j", lease: 3, gpuIndices: [0], spec: { name: "j", command: ["x"], env: {}, attempt: 1 } },
      r,
    );
    expect(update).toMatchObject({ state: "failed", reason: "LeaseLost", lease: 3 });
    expect(update.message).toMatch(/watchdog.*no keep-alive/);
  });

  it("lets a fed job run far past the timeout, and leaves nothing behind when it ends", async () => {
    const p = startProcess({
      command: ["sh", "-c", "sleep 1.3; echo done"],
      env: PATH_ONLY,
      watchdog: { timeoutSeconds: 0.4, graceMs: 200 },
    });
    const r = await p.result;
    expect(r).toMatchObject({ exitCode: 0, signal: null, killReason: undefined, watchdogFired: false });
    expect(r.logTail).toBe("done\n");
    // The wrapper reaped its helpers itself: not even zombies are left in the group.
    expect(groupMembers(p.pid!)).toEqual([]);
  });

  it("runs the program itself (not a shell builtin) with argv intact and nothing extra open", async () => {
    const run = async (command: string[]) =>
      (await startProcess({ command, env: PATH_ONLY, watchdog: { timeoutSeconds: 30, graceMs: 200 } }).result)
        .logTail;
    // dash's builtin echo has no -e; /bin/echo does.
    expect(await run(["echo", "-e", "a\\tb"])).toBe("a\tb\n");
    expect(await run(["sh", "-c", 'printf "[%s]" "$0" "$@"', "x", "a b", "$HOME", "*", "'q'", ""])).toBe(
      "[x][a b][$HOME][*]['q'][]",
    );
    // The same descriptors as when started directly: stdin /dev/null, the wrapper's own (3: the agent's
    // pipe, 4: the saved stderr) closed. No signal ignored (sh's background jobs would ignore SIGINT).
    const direct = await startProcess({ command: ["ls", "/proc/self/fd"], env: PATH_ONLY }).result;
    expect(await run(["ls", "/proc/self/fd"])).toBe(direct.logTail);
    expect(await run(["readlink", "/proc/self/fd/0"])).toBe("/dev/null\n");
    expect(await run(["grep", "SigIgn", "/proc/self/status"])).toBe("SigIgn:\t0000000000000000\n");
  });

  it("reports a command that cannot start as a spawn error without starting the wrapper", async () => {
    const missing = startProcess({
      command: ["gantry-no-such-command"],
      env: PATH_ONLY,
      watchdog: { timeoutSeconds: 30, graceMs: 200 },
    });
    expect(missing.pid).toBeUndefined();
    expect(await missing.result).toMatchObject({ exitCode: 127, spawnError: { code: "ENOENT" } });
    const notExecutable = await startProcess({
      command: [join(dir, "..")],
      env: PATH_ONLY,
      watchdog: { timeoutSeconds: 30, graceMs: 200 },
    }).result;
    expect(notExecutable).toMatchObject({ exitCode: 126, spawnError: { code: "EACCES" } });
  });
});

// The wrapper spawned by hand under each POSIX shell at hand: /bin/sh is dash on Debian and Ubuntu but
// bash (in POSIX mode) on RHEL and its relatives, and the two differ in how they handle signals.
const shells: [string, string[]][] = [[WRAPPER_SHELL, []]];
if (existsSync("/bin/bash")) shells.push(["/bin/bash", ["--posix"]]);

describe.skipIf(!watchdogTools()).each(shells)("the wrapper under %s", (shell, shellArgs) => {
  function wrap(command: string[], timeoutSeconds: number, feed: boolean) {
    const child = spawn(
      shell,
      [...shellArgs, ...wrapperArgs(command, { timeoutSeconds, graceMs: 200 }, watchdogTools()!.sleep)],
      { detached: true, stdio: ["ignore", "pipe", "pipe", "pipe"], env: PATH_ONLY },
    );
    children.push(child);
    let output = "";
    let back = "";
    child.stdout!.on("data", (d) => {
      output += d;
    });
    child.stderr!.on("data", (d) => {
      output += d;
    });
    const socket = child.stdio[3] as Duplex;
    socket.on("data", (d) => {
      back += d;
    });
    socket.on("error", () => {});
    // Each keep-alive grants a whole timeout, as the agent's do while its heartbeats get through.
    const feeder = feed ? setInterval(() => socket.write(`${timeoutSeconds * 1000}\n`), 100) : undefined;
    const exit = new Promise<{ code: number | null; signal: string | null }>((r) =>
      child.once("exit", (code, signal) => {
        clearInterval(feeder);
        r({ code, signal });
      }),
    );
    return { child, exit, output: () => output, back: () => back, socket };
  }

  it("passes the command's exit status and output through, and leaves nothing behind", async () => {
    const ok = wrap(["sh", "-c", "echo out; echo err >&2; sleep 0.5; exit 3"], 0.4, true);
    expect(await ok.exit).toEqual({ code: 3, signal: null });
    expect(ok.output()).toBe("out\nerr\n");
    expect(ok.back()).toBe("");
    expect(groupMembers(ok.child.pid!)).toEqual([]);
    const segv = wrap(["sh", "-c", "kill -SEGV $$"], 30, true);
    expect(await segv.exit).toEqual({ code: 139, signal: null });
  });

  it("kills the job's tree when the agent's end of the pipe closes (EOF)", async () => {
    const pidFile = join(dir, `eof-${shells.findIndex(([s]) => s === shell)}.pids`);
    const w = wrap(treeJob(pidFile), 30, true);
    const pids = await pidsFrom(pidFile, 3);
    w.socket.destroy();
    await until(() => !groupAlive(w.child.pid!), "the job's process group gone", 5000);
    expect(pids.filter(alive)).toEqual([]);
    expect(await w.exit).toEqual({ code: null, signal: "SIGKILL" });
  });

  it("kills the job's tree when no keep-alive comes, and tells the agent", async () => {
    const pidFile = join(dir, `starved-${shells.findIndex(([s]) => s === shell)}.pids`);
    const w = wrap(treeJob(pidFile), 0.5, false);
    const pids = await pidsFrom(pidFile, 3);
    await until(() => !groupAlive(w.child.pid!), "the job's process group gone", 5000);
    expect(pids.filter(alive)).toEqual([]);
    expect(w.back()).toBe(`${WATCHDOG_FIRED}\n`);
    expect(w.output()).toContain("stopped sending keep-alives and its lease ran out");
  });
});
