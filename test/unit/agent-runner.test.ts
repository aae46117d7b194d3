// The job runner with real child processes: environment, exit codes, output tail, and that timeouts and
// kills take down the whole process tree (not just the first process). Everything about exit codes and
// killing runs twice: with the job started directly and under the watchdog wrapper the agent uses.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildJobEnv } from "../../cli/agent/env.ts";
import { terminalUpdate } from "../../cli/agent/jobs.ts";
import { groupAlive, processState } from "../../cli/agent/proctree.ts";
import type { Assignment } from "../../cli/agent/protocol.ts";
import { type RunOptions, startProcess as start } from "../../cli/agent/runner.ts";
import { LOG_TAIL_BYTES } from "../../cli/agent/tail.ts";
import type { WatchdogOptions } from "../../cli/agent/watchdog.ts";

const PATH_ONLY = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

function job(
  over: Omit<Partial<Assignment>, "spec"> & { spec?: Partial<Assignment["spec"]> } = {},
): Assignment {
  return {
    jobId: "j1",
    lease: 7,
    gpuIndices: [2, 5],
    ...over,
    spec: { name: "t", command: ["true"], env: {}, attempt: 2, ...over.spec },
  };
}

const alive = (pid: number) => {
  const s = processState(pid);
  return s !== null && s !== "Z" && s !== "X";
};

async function waitForFile(path: string, timeoutMs = 3000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const text = readFileSync(path, "utf8");
      if (text.trim() !== "") return text;
    } catch {}
    if (Date.now() > deadline) throw new Error(`no ${path}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("job environment", () => {
  it("inherits the agent's environment, adds the job's env and Gantry's variables", () => {
    const env = buildJobEnv(
      { PATH: "/bin", HOME: "/root", GANTRY_JOIN_TOKEN: "secret", GANTRY_URL: "http://x" },
      job({
        spec: { env: { A: "1", CUDA_VISIBLE_DEVICES: "0,1,2,3", GANTRY_JOB_ID: "forged" }, arrayIndex: 4 },
      }),
    );
    expect(env).toEqual({
      PATH: "/bin",
      HOME: "/root",
      A: "1",
      CUDA_VISIBLE_DEVICES: "2,5",
      GANTRY_JOB_ID: "j1",
      GANTRY_ATTEMPT: "2",
      GANTRY_LEASE: "7",
      GANTRY_ARRAY_INDEX: "4",
    });
  });

  it("omits GANTRY_ARRAY_INDEX for non-array jobs", () => {
    expect(buildJobEnv({}, job())).not.toHaveProperty("GANTRY_ARRAY_INDEX");
  });

  it("reaches the child process", async () => {
    const a = job({
      spec: {
        command: ["sh", "-c", 'echo "$CUDA_VISIBLE_DEVICES|$GANTRY_LEASE|$A|$HOME"'],
        env: { A: "x y" },
      },
    });
    const r = await start({
      command: a.spec.command,
      env: buildJobEnv({ ...PATH_ONLY, HOME: "/h" }, a),
      watchdog: CALM,
    }).result;
    expect(r.logTail).toBe("2,5|7|x y|/h\n");
  });
});

// A watchdog that never fires during these tests: they are about everything else staying the same.
const CALM: WatchdogOptions = { timeoutSeconds: 60, graceMs: 300 };

describe.each([
  ["started directly", undefined],
  ["under the watchdog", CALM],
])("%s", (_mode, watchdog) => {
  const startProcess = (opts: RunOptions) => start({ watchdog, ...opts });
  const dir = mkdtempSync(join(tmpdir(), "gantry-runner-"));

  describe("exit codes and output", () => {
    it("reports exit 0 as succeeded with the output", async () => {
      const r = await startProcess({ command: ["sh", "-c", "echo out; echo err >&2"], env: PATH_ONLY })
        .result;
      expect(r).toMatchObject({ exitCode: 0, signal: null, killReason: undefined, spawnError: undefined });
      expect(r.logTail).toContain("out\n");
      expect(r.logTail).toContain("err\n");
      expect(terminalUpdate(job(), r)).toMatchObject({ state: "succeeded", exitCode: 0, lease: 7 });
    });

    it("reports a non-zero exit as failed with that code", async () => {
      const r = await startProcess({ command: ["sh", "-c", "exit 42"], env: PATH_ONLY }).result;
      expect(r.exitCode).toBe(42);
      expect(terminalUpdate(job(), r)).toMatchObject({
        state: "failed",
        exitCode: 42,
        message: "exited with code 42",
      });
    });

    it("reports death by signal as 128+N", async () => {
      const r = await startProcess({ command: ["sh", "-c", "kill -SEGV $$"], env: PATH_ONLY }).result;
      expect(r).toMatchObject({ exitCode: 139, signal: "SIGSEGV" });
      expect(terminalUpdate(job(), r)).toMatchObject({
        state: "failed",
        message: "killed by signal SIGSEGV",
      });
    });

    it("reports a missing command as SpawnError with exit code 127, without a pid", async () => {
      const p = startProcess({ command: ["/nonexistent/gantry-no-such-binary"], env: PATH_ONLY });
      expect(p.pid).toBeUndefined();
      const r = await p.result;
      expect(r.exitCode).toBe(127);
      expect(r.spawnError?.code).toBe("ENOENT");
      expect(terminalUpdate(job(), r)).toMatchObject({
        state: "failed",
        exitCode: 127,
        reason: "SpawnError",
      });
    });

    it("keeps only the last 64 KiB of output", async () => {
      // 200,000 numbered lines (~1.3 MB) on both streams; the tail must end with the last line. stdout and
      // stderr are separate pipes, so which one is read last is up to the scheduler: both end with END.
      const script =
        "i=0; while [ $i -lt 100000 ]; do echo line-$i; echo err-$i >&2; i=$((i+1)); done; echo END; echo END >&2";
      const r = await startProcess({ command: ["sh", "-c", script], env: PATH_ONLY }).result;
      expect(Buffer.byteLength(r.logTail)).toBeLessThanOrEqual(LOG_TAIL_BYTES);
      expect(Buffer.byteLength(r.logTail)).toBeGreaterThan(LOG_TAIL_BYTES - 16);
      expect(r.logTail.endsWith("END\n")).toBe(true);
      expect(r.logTail).not.toContain("line-1\n");
    });

    it("streams output chunks to onOutput", async () => {
      const chunks: string[] = [];
      await startProcess({
        command: ["sh", "-c", "echo a; echo b"],
        env: PATH_ONLY,
        onOutput: (c) => chunks.push(c.toString()),
      }).result;
      expect(chunks.join("")).toBe("a\nb\n");
    });

    it("does not wait on a sleep for many short jobs", async () => {
      const t0 = Date.now();
      const results = await Promise.all(
        Array.from({ length: 100 }, () => startProcess({ command: ["true"], env: PATH_ONLY }).result),
      );
      expect(results.every((r) => r.exitCode === 0)).toBe(true);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(Math.max(...results.map((r) => r.durationMs))).toBeLessThan(1000);
    });
  });

  describe("killing the process tree", () => {
    it("enforces maxRuntimeSeconds by killing every process of the job", async () => {
      const pidFile = join(dir, "timeout.pid");
      const p = startProcess({
        command: ["sh", "-c", `sleep 60 & echo $! > ${pidFile}; sleep 60; echo never`],
        env: PATH_ONLY,
        maxRuntimeSeconds: 0.3,
      });
      const grandchild = Number(await waitForFile(pidFile));
      expect(alive(grandchild)).toBe(true);
      const t0 = Date.now();
      const r = await p.result;
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(r.killReason).toBe("Timeout");
      expect(alive(grandchild)).toBe(false);
      expect(groupAlive(p.pid!)).toBe(false);
      const update = terminalUpdate(job({ spec: { maxRuntimeSeconds: 0.3 } }), r);
      expect(update).toMatchObject({ state: "failed", reason: "Timeout" });
      expect(update.message).toContain("maxRuntimeSeconds (0.3 s)");
    });

    it("cancel kills the tree and is reported as Cancelled even if the job exits 0 on SIGTERM", async () => {
      const pidFile = join(dir, "cancel.pid");
      const p = startProcess({
        command: ["sh", "-c", `trap 'exit 0' TERM; sleep 60 & echo $! > ${pidFile}; wait`],
        env: PATH_ONLY,
      });
      const grandchild = Number(await waitForFile(pidFile));
      p.kill("Cancelled");
      const r = await p.result;
      expect(r.killReason).toBe("Cancelled");
      expect(alive(grandchild)).toBe(false);
      expect(terminalUpdate(job(), r)).toMatchObject({ state: "failed", reason: "Cancelled" });
    });

    it("escalates to SIGKILL after the grace period when SIGTERM is ignored", async () => {
      const ready = join(dir, "ignore.ready");
      const p = startProcess({
        command: ["sh", "-c", `trap '' TERM; echo ok > ${ready}; while :; do sleep 0.05; done`],
        env: PATH_ONLY,
        killGraceMs: 300,
      });
      await waitForFile(ready);
      const t0 = Date.now();
      p.kill("Drained");
      const r = await p.result;
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(250);
      expect(took).toBeLessThan(3000);
      expect(r).toMatchObject({ signal: "SIGKILL", exitCode: 137, killReason: "Drained" });
      expect(terminalUpdate(job(), r, 600)).toMatchObject({ state: "failed", reason: "Drained" });
    });

    it("kill({immediate}) uses SIGKILL at once", async () => {
      const p = startProcess({
        command: ["sh", "-c", "trap '' TERM; sleep 60"],
        env: PATH_ONLY,
        killGraceMs: 10_000,
      });
      p.kill("Abandoned", { immediate: true });
      const r = await p.result;
      expect(r.signal).toBe("SIGKILL");
    });

    it("cleans up processes a finished job left behind", async () => {
      const pidFile = join(dir, "straggler.pid");
      const p = startProcess({
        command: ["sh", "-c", `sleep 60 >/dev/null 2>&1 & echo $! > ${pidFile}; echo bye`],
        env: PATH_ONLY,
        killGraceMs: 300,
      });
      const r = await p.result;
      expect(r.exitCode).toBe(0);
      expect(r.logTail).toBe("bye\n");
      expect(alive(Number(readFileSync(pidFile, "utf8")))).toBe(false);
    });
  });
});
