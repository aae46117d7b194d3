// The `gantry` command as users run it: a real process (tsx and the bin shim), exit codes, stderr
// messages, and signal handling of `gantry agent` against the scripted control plane.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { assignment, FakeControlPlane, until } from "./agent-fake-control-plane.ts";

const root = resolve(import.meta.dirname, "../..");
let cp: FakeControlPlane;
const children: ChildProcess[] = [];

beforeEach(async () => {
  cp = await new FakeControlPlane().start();
});
afterEach(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  children.length = 0;
  await cp.close();
});

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function gantry(args: string[], env: NodeJS.ProcessEnv = {}, viaBin = false): Run {
  const entry = viaBin ? [join(root, "bin/gantry.mjs")] : ["--import", "tsx", join(root, "cli/main.ts")];
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => {
    out += d;
  });
  child.stderr!.on("data", (d) => {
    err += d;
  });
  const exit = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

const jsonLines = (text: string) =>
  text
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("gantry", () => {
  it("--help lists the commands", async () => {
    const r = gantry(["--help"]);
    expect(await r.exit).toBe(0);
    expect(r.stdout()).toMatch(/Usage: gantry <command>/);
    expect(r.stdout()).toMatch(/agent\s+run the GPU host agent/);
  });

  it("an unknown command exits 2 with a message on stderr", async () => {
    const r = gantry(["frobnicate"]);
    expect(await r.exit).toBe(2);
    expect(r.stderr()).toMatch(/unknown command "frobnicate"/);
    expect(r.stdout()).toBe("");
  });

  it("the bin shim runs the same CLI", async () => {
    const r = gantry(["agent", "--help"], {}, true);
    expect(await r.exit).toBe(0);
    expect(r.stdout()).toMatch(/Usage: gantry agent --url URL --join-token TOKEN/);
  });
});

describe("gantry agent", () => {
  it("exits 2 on a bad URL", async () => {
    const r = gantry(["agent", "--url", "gantry.example.com", "--join-token", "t"]);
    expect(await r.exit).toBe(2);
    expect(r.stderr()).toMatch(/--url is not a valid URL/);
  });

  it("exits 3 when the join token is rejected, without printing it", async () => {
    const r = gantry(["agent", "--gpus", "fake:1xH100"], {
      GANTRY_URL: cp.url,
      GANTRY_JOIN_TOKEN: "not-the-token-42",
    });
    expect(await r.exit).toBe(3);
    const err = jsonLines(r.stderr()).find((l) => l.level === "error")!;
    expect(err.msg).toMatch(/join token rejected.*ask your admin for a new one/);
    expect(r.stderr()).not.toContain("not-the-token-42");
  });

  it("exits 1 with a hint when nvidia-smi is missing", async () => {
    const empty = mkdtempSync(join(tmpdir(), "gantry-nopath-"));
    const r = gantry(["agent", "--url", cp.url, "--join-token", cp.joinToken], { PATH: empty });
    expect(await r.exit).toBe(1);
    expect(r.stderr()).toMatch(/nvidia-smi not found.*--gpus fake:/);
  });

  it("runs jobs, and on SIGTERM drains, deregisters and exits 0", async () => {
    const r = gantry([
      "agent",
      "--url",
      cp.url,
      "--join-token",
      cp.joinToken,
      "--gpus",
      "fake:2xH100",
      "--hostname",
      "cli-host",
    ]);
    await until(
      () => cp.workers.size === 1 && cp.connected([...cp.workers.keys()][0]!),
      "agent registered",
      15_000,
    );
    const id = [...cp.workers.keys()][0]!;
    cp.push(id, {
      type: "assignments",
      assignments: [assignment("cli-1", ["sh", "-c", "sleep 0.3; echo ok"])],
    });
    await until(() => cp.statusesOf("cli-1").length === 1, "job running");
    r.child.kill("SIGTERM");
    expect(await r.exit).toBe(0);
    expect(cp.statusesOf("cli-1").map((s) => s.body.state)).toEqual(["running", "succeeded"]);
    expect(cp.requestsTo("/drain")).toHaveLength(1);
    expect(cp.requestsTo("/deregister")).toHaveLength(1);
    const logs = jsonLines(r.stderr());
    expect(
      logs.every((l) => typeof l.t === "string" && typeof l.level === "string" && typeof l.msg === "string"),
    ).toBe(true);
    expect(r.stderr()).not.toContain(cp.joinToken);
  });

  it("a second SIGTERM kills the jobs and exits at once", async () => {
    const r = gantry(["agent", "--url", cp.url, "--join-token", cp.joinToken, "--gpus", "fake:1xH100"]);
    await until(
      () => cp.workers.size === 1 && cp.connected([...cp.workers.keys()][0]!),
      "agent registered",
      15_000,
    );
    const id = [...cp.workers.keys()][0]!;
    cp.push(id, { type: "assignments", assignments: [assignment("cli-2", ["sleep", "60"])] });
    await until(() => cp.statusesOf("cli-2").length === 1, "job running");
    r.child.kill("SIGTERM");
    await until(() => cp.requestsTo("/drain").length === 1, "drain requested");
    const t0 = Date.now();
    r.child.kill("SIGTERM");
    expect(await r.exit).toBe(143);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
