// The `gantry` CLI end to end: real processes of the installed command (bin/gantry.mjs) against one real
// control plane (wrangler dev + Postgres) and one real agent. Every command's table and --json output,
// submit --wait both ways, explain, cancel, logs --follow, jobs --watch, the admin commands, and the
// documented exit codes for failures.
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../db/launcher.ts";
import {
  type AgentProc,
  bootstrap,
  must,
  ROOT,
  type Server,
  startAgent,
  startServer,
  waitFor,
} from "./support.ts";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Live {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exit: Promise<number | null>;
}

let s: Server;
let agent: AgentProc | null = null;
let cfg: string;
let keys: Awaited<ReturnType<typeof bootstrap>>;
const live: ChildProcess[] = [];

/** Starts `gantry ARGS` as users run it, with its own config directory and no GANTRY_* variables. */
function start(args: string[], env: Record<string, string> = {}, input?: string): Live {
  const child = spawn(process.execPath, [path.join(ROOT, "bin", "gantry.mjs"), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, XDG_CONFIG_HOME: cfg, ...env },
    stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  live.push(child);
  if (input !== undefined) child.stdin!.end(input);
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

async function gantry(args: string[], env: Record<string, string> = {}, input?: string): Promise<Result> {
  const p = start(args, env, input);
  const code = await p.exit;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** Runs a command that must succeed and returns its stdout. */
async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await gantry(args, env);
  if (r.code !== 0) throw new Error(`gantry ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function json<T = Record<string, unknown>>(
  args: string[],
  env: Record<string, string> = {},
): Promise<T> {
  // --json goes before "--": everything after it is the job's command.
  const i = args.indexOf("--");
  const withJson = i < 0 ? [...args, "--json"] : [...args.slice(0, i), "--json", ...args.slice(i)];
  return JSON.parse(await ok(withJson, env)) as T;
}

/** The header line of a table, as words. */
const headers = (out: string) =>
  out
    .split("\n")[0]!
    .trim()
    .split(/\s{2,}/);

const ADMIN = ["--profile", "admin"];
const ROOT_KEY = ["--profile", "root"];

beforeAll(async () => {
  // A generous lease TTL: on a loaded machine a late heartbeat must not make the worker look dead.
  s = await startServer({ leaseTtlSeconds: 15 });
  keys = await bootstrap(s);
  agent = startAgent(s, keys.joinToken, "fake:2xH100", ["--log-interval", "0.5"]);
  cfg = fs.mkdtempSync(path.join(os.tmpdir(), "gantry-cli-e2e-"));
  await waitFor(
    async () => {
      const w = await must<{ items: { state: string }[] }>(s, "GET", "/v1/workers", s.admin);
      return w.items.some((x) => x.state === "alive");
    },
    30_000,
    "agent registered",
  );
});

afterAll(async () => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  agent?.kill("SIGKILL");
  await s?.destroy();
  if (cfg) fs.rmSync(cfg, { recursive: true, force: true });
});

describe("gantry CLI against a running control plane", () => {
  it("login checks the key, stores 0600 profiles, and refuses bad keys (exit 3)", async () => {
    const member = await gantry(["login", "--url", s.url, "--key", keys.key]);
    expect(member.code).toBe(0);
    expect(member.stdout).toMatch(/Logged in to .* as tenant acme; saved profile "default"/);

    // The key on stdin ("-") keeps it out of ps; --json describes what was saved.
    const root = JSON.parse(
      (
        await gantry(
          ["login", "--url", s.url, "--key", "-", "--profile", "root", "--json"],
          {},
          `${keys.adminKey}\n`,
        )
      ).stdout,
    );
    expect(root).toMatchObject({ profile: "root", kind: "tenant", tenantId: "acme" });
    expect(await ok(["login", "--url", s.url, "--key", s.admin, ...ADMIN])).toMatch(/as the platform admin/);

    const file = path.join(cfg, "gantry", "config.json");
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(fs.readFileSync(file, "utf8"));
    expect(saved.profiles.default).toEqual({ url: s.url, key: keys.key });
    expect(saved.profiles.admin).toEqual({ url: s.url, adminToken: s.admin });

    const bad = await gantry([
      "login",
      "--url",
      s.url,
      "--key",
      "gtk_acme_0000000000000000000000000000000A",
      "--profile",
      "bad",
    ]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/rejected this key/);
    expect(JSON.parse(fs.readFileSync(file, "utf8")).profiles.bad).toBeUndefined();
  });

  it("admin commands: tenants, keys, pools, join tokens, quotas (tables and --json)", async () => {
    expect(await ok(["admin", "tenant", "create", "beta", "--weight", "2", ...ADMIN])).toMatch(
      /Created tenant beta/,
    );
    expect(headers(await ok(["admin", "tenant", "list", ...ADMIN]))).toEqual([
      "ID",
      "NAME",
      "WEIGHT",
      "QUOTA",
      "CREATED",
    ]);
    const tenants = await json<{ items: { id: string }[] }>(["admin", "tenant", "list", ...ADMIN]);
    expect(tenants.items.map((t) => t.id)).toEqual(expect.arrayContaining(["acme", "beta"]));
    expect(await json(["admin", "tenant", "set-weight", "beta", "3", ...ADMIN])).toMatchObject({
      id: "beta",
      weight: 3,
    });

    // The key alone on stdout, so KEY=$(gantry admin key create ...) works.
    const created = await gantry(["admin", "key", "create", "beta", "--name", "bob", ...ADMIN]);
    expect(created.code).toBe(0);
    const betaKey = created.stdout.trim();
    expect(betaKey).toMatch(/^gtk_beta_\w+$/);
    expect(created.stderr).toMatch(/shown once/);
    const keyList = await ok(["admin", "key", "list", "beta", ...ADMIN]);
    expect(headers(keyList)).toEqual(["ID", "NAME", "ROLE", "PREFIX", "CREATED", "REVOKED"]);
    const betaKeys = await json<{ items: { id: string; name: string }[] }>([
      "admin",
      "key",
      "list",
      "beta",
      ...ADMIN,
    ]);
    const bob = betaKeys.items.find((k) => k.name === "bob")!;
    expect((await gantry(["queue"], { GANTRY_URL: s.url, GANTRY_KEY: betaKey })).code).toBe(0);
    expect(await ok(["admin", "key", "revoke", "beta", bob.id, ...ADMIN])).toMatch(/Revoked key/);
    await waitFor(
      async () => (await gantry(["queue"], { GANTRY_URL: s.url, GANTRY_KEY: betaKey })).code === 3,
      15_000,
      "revoked key refused",
    );

    expect(await ok(["admin", "pool", "create", "east", ...ADMIN])).toMatch(/Created pool east/);
    expect(headers(await ok(["admin", "pool", "list", ...ADMIN]))).toEqual(["ID", "NAME", "CREATED"]);
    const jt = await gantry(["admin", "join-token", "create", "east", "--ttl", "1h", ...ADMIN]);
    expect(jt.stdout.trim()).toMatch(/^gjt_east_\w+$/);
    expect(await json(["admin", "join-token", "create", "east", ...ADMIN])).toMatchObject({
      poolId: "east",
      expiresAt: null,
    });

    const quota = await ok([
      "admin",
      "quota",
      "set",
      "beta",
      "--gpus",
      "H100=4,borrow=2",
      "--gpus",
      "*=1",
      "--cohort",
      "research",
      "--max-jobs",
      "5",
      ...ADMIN,
    ]);
    expect(quota).toMatch(/GPU TYPE\s+NOMINAL\s+BORROW\s+LEND/);
    expect(await json(["admin", "tenant", "show", "beta", ...ADMIN])).toMatchObject({
      weight: 3,
      quota: {
        gpus: { H100: { nominal: 4, borrowingLimit: 2 }, "*": { nominal: 1 } },
        cohort: "research",
        maxConcurrentJobs: 5,
      },
    });
    expect(await ok(["admin", "tenant", "show", "beta", ...ADMIN])).toMatch(
      /Quota:\s+\*=1 H100=4,borrow=2 cohort=research max-jobs=5|Quota:\s+H100=4,borrow=2 \*=1 cohort=research max-jobs=5/,
    );
    expect(await ok(["admin", "quota", "clear", "beta", ...ADMIN])).toMatch(/no limit/);
    expect(await json(["admin", "tenant", "show", "beta", ...ADMIN])).toMatchObject({ quota: null });
  });

  it("submit --wait: a job that succeeds exits 0, one that fails exits 1", async () => {
    const good = await gantry(["submit", "--wait", "--name", "hello", "--", "sh", "-c", "echo hello"]);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/^Submitted job job_\w+$/m);
    expect(good.stdout).toMatch(/queued → scheduled/);
    expect(good.stdout).toMatch(/→ succeeded/);
    expect(good.stdout).toMatch(/Job job_\w+ succeeded \(1xH100 GPUs, ran \w+, exit code 0\)/);

    const bad = await gantry([
      "submit",
      "--wait",
      "--name",
      "boom",
      "--label",
      "kind=bad",
      "--",
      "sh",
      "-c",
      "echo oops; exit 3",
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/running → failed\s+exited with code 3/);
    expect(bad.stdout).toMatch(/Job job_\w+ failed .*exit code 3/);

    // --json: one document on stdout (the job as it ended); progress on stderr.
    const r = await gantry([
      "submit",
      "--wait",
      "--json",
      "--env",
      "GREETING=hi",
      "--",
      "sh",
      "-c",
      "echo $GREETING",
    ]);
    expect(r.code).toBe(0);
    const job = JSON.parse(r.stdout);
    expect(job).toMatchObject({ state: "succeeded", exitCode: 0, env: { GREETING: "hi" }, attempt: 1 });
    expect(r.stderr).toMatch(/Submitted job/);
    expect(r.stderr).toMatch(/→ succeeded/);

    const array = await gantry([
      "submit",
      "--wait",
      "--array",
      "3",
      "--",
      "sh",
      "-c",
      "echo $GANTRY_ARRAY_INDEX",
    ]);
    expect(array.code).toBe(0);
    expect(array.stdout).toMatch(/Array arr_\w+: 3 succeeded, 0 failed, 0 cancelled/);
    const arrayId = /Array (arr_\w+)/.exec(array.stdout)![1]!;
    expect(await ok(["show", arrayId])).toMatch(/^Tasks:\s+3 \(3 succeeded\)$/m);
    expect(await json(["show", arrayId])).toMatchObject({ id: arrayId, size: 3, counts: { succeeded: 3 } });
  });

  it("jobs, show and logs: tables with their columns, and the API's JSON", async () => {
    const table = await ok(["jobs"]);
    expect(headers(table)).toEqual([
      "ID",
      "NAME",
      "USER",
      "STATE",
      "PRIORITY",
      "GPUS",
      "SUBMITTED",
      "RUNTIME",
      "EXIT",
    ]);
    expect(table).toMatch(/boom\s+alice\s+failed\s+normal\s+1xH100/);
    const page = await json<{
      items: { id: string; name: string; state: string }[];
      nextCursor: string | null;
    }>(["jobs", "--state", "failed"]);
    expect(page.nextCursor).toBeNull();
    expect(page.items.every((j) => j.state === "failed")).toBe(true);
    const boom = page.items.find((j) => j.name === "boom")!;
    expect((await json<{ items: unknown[] }>(["jobs", "--label", "kind=bad"])).items).toHaveLength(1);
    const all = await json<{ items: unknown[]; nextCursor: null }>(["jobs", "--all", "--limit", "2"]);
    expect(all.items.length).toBeGreaterThanOrEqual(6);
    expect(all.nextCursor).toBeNull();

    const shown = await ok(["show", boom.id]);
    expect(shown).toMatch(/^Job:\s+job_/m);
    expect(shown).toMatch(/^State:\s+failed$/m);
    expect(shown).toMatch(/^Exit code:\s+3$/m);
    expect(shown).toMatch(/^Command:\s+sh -c 'echo oops; exit 3'$/m);
    expect(shown).toMatch(/TIME\s+FROM\s+TO\s+ATTEMPT\s+REASON\s+EXIT\s+WORKER\s+MESSAGE/);
    expect(await json(["show", boom.id])).toMatchObject({
      id: boom.id,
      state: "failed",
      exitCode: 3,
      labels: { kind: "bad" },
    });

    expect(await ok(["logs", boom.id])).toBe("oops\n");
    expect(await json(["logs", boom.id])).toMatchObject({ jobId: boom.id, attempt: 1, tail: "oops\n" });
  });

  it("explain and cancel: a job no worker can fit, then cancelling it twice (exit 5)", async () => {
    const job = await json<{ id: string; state: string }>([
      "submit",
      "--gpus",
      "3",
      "--name",
      "too-big",
      "--",
      "true",
    ]);
    expect(job.state).toBe("queued");
    const explained = await ok(["explain", job.id]);
    expect(explained).toMatch(/^State:\s+queued$/m);
    expect(explained).toMatch(/^Reason:\s+NoMatchingWorkers$/m);
    expect(explained).toMatch(/needs 3 GPUs/);
    expect(await json(["explain", job.id])).toMatchObject({
      state: "queued",
      reason: { code: "NoMatchingWorkers" },
    });

    expect(await ok(["cancel", job.id])).toBe(`Cancelled job ${job.id}.\n`);
    const again = await gantry(["cancel", job.id]);
    expect(again.code).toBe(5);
    expect(again.stderr).toMatch(/InvalidTransition/);
    expect(again.stderr).toMatch(/hint: the job already finished/);
    expect(again.stdout).toBe("");
    expect(await json(["show", job.id])).toMatchObject({ state: "cancelled" });

    // A running job: the agent stops it; submit --wait sees "cancelled" and exits 1.
    const waiting = start(["submit", "--wait", "--name", "long", "--", "sleep", "60"]);
    await waitFor(async () => /scheduled → running/.test(waiting.stdout()), 30_000, "long job running");
    const id = /Submitted job (job_\w+)/.exec(waiting.stdout())![1]!;
    expect(await ok(["cancel", id])).toMatch(
      /^Cancellation requested for job job_\w+ \(running on worker w-/,
    );
    expect(await waiting.exit).toBe(1);
    expect(waiting.stdout()).toMatch(/running → cancelled/);
    expect(waiting.stdout()).toMatch(new RegExp(`Job ${id} cancelled`));
  });

  it("logs --follow prints the output once, in order, and ends with the job", async () => {
    const job = await json<{ id: string }>([
      "submit",
      "--",
      "sh",
      "-c",
      "for i in 1 2 3; do echo line $i; sleep 0.5; done",
    ]);
    const r = await gantry(["logs", job.id, "--follow", "--interval", "200ms"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("line 1\nline 2\nline 3\n");
    expect(await json(["show", job.id])).toMatchObject({ state: "succeeded" });
  });

  it("logs --follow shows a running job's output before the job ends (the agent uploads it mid-run)", async () => {
    const gate = path.join(cfg, `gate-${Date.now()}`);
    const job = await json<{ id: string }>([
      "submit",
      "--",
      "sh",
      "-c",
      `echo early; while [ ! -e ${gate} ]; do sleep 0.1; done; echo late`,
    ]);
    const follow = start(["logs", job.id, "--follow", "--interval", "200ms"]);
    await waitFor(async () => follow.stdout().includes("early\n"), 20_000, "mid-run output");
    expect(await json(["show", job.id])).toMatchObject({ state: "running" });
    fs.writeFileSync(gate, "");
    expect(await follow.exit).toBe(0);
    expect(follow.stdout()).toBe("early\nlate\n");
  });

  it("jobs --watch prints the table, then transitions as they happen", async () => {
    const watch = start(["jobs", "--watch", "--limit", "3"]);
    await waitFor(async () => /Watching for transitions/.test(watch.stderr()), 20_000, "watch started");
    expect(headers(watch.stdout())).toContain("STATE");
    const job = await json<{ id: string }>(["submit", "--name", "watched", "--", "true"]);
    await waitFor(
      async () => new RegExp(`${job.id}\\s+watched\\s+running → succeeded`).test(watch.stdout()),
      30_000,
      "transition in the watch output",
    );
    expect(watch.stdout()).toMatch(new RegExp(`${job.id}\\s+watched\\s+new → queued`));
    watch.child.kill("SIGTERM");
    expect(await watch.exit).toBe(0);

    // --watch --json: JSON lines, the page first, then events.
    const jw = start(["jobs", "--watch", "--json", "--limit", "1"]);
    await waitFor(async () => jw.stdout().includes("\n"), 20_000, "first JSON line");
    const next = await json<{ id: string }>(["submit", "--", "true"]);
    await waitFor(
      async () => jw.stdout().includes(`"to":"succeeded"`) && jw.stdout().includes(next.id),
      30_000,
      "event line",
    );
    jw.child.kill("SIGTERM");
    await jw.exit;
    const lines = jw
      .stdout()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines[0]).toHaveProperty("items");
    expect(lines.slice(1).every((e) => typeof e.seq === "number" && typeof e.to === "string")).toBe(true);
  });

  it("queue, quota, usage and workers: tables and JSON", async () => {
    const q = await ok(["queue"]);
    expect(q).toMatch(/^Tenant acme: \d+ queued, \d+ scheduled, \d+ running$/m);
    expect(q).toMatch(/STATE\s+HIGH\s+NORMAL\s+LOW\s+TOTAL\s+OLDEST WAIT/);
    expect(await json(["queue"])).toMatchObject({
      tenantId: "acme",
      counts: { byState: expect.any(Object) },
      fairShare: expect.any(Object),
    });

    expect(await ok(["quota"])).toMatch(/No quota: GPUs are not limited/);
    expect(await json(["quota"])).toMatchObject({ quota: null, usage: { gpus: expect.any(Number) } });

    const usage = await ok(["usage", "--from", "1d"]);
    expect(usage).toMatch(/USER\s+GPU TYPE\s+JOBS\s+GPU TIME\s+GPU-HOURS/);
    expect(usage).toMatch(/alice\s+H100/);
    const report = await json<{ items: { user: string; jobs: number }[]; totalGpuSeconds: number }>([
      "usage",
    ]);
    expect(report.items.find((i) => i.user === "alice")?.jobs).toBeGreaterThan(0);
    const periods = await ok(["usage", "--from", "1d", "--step", "6h"]);
    expect(periods).toMatch(/PERIOD\s+GPU-HOURS\s+BY USER/);
    expect(periods).toMatch(/alice \d+\.\d\d/);
    const series = await json<{ buckets: { from: string }[] }>([
      "usage",
      ...["--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z", "--step", "6h"],
    ]);
    expect(series.buckets.map((b) => b.from.slice(11, 16))).toEqual(["00:00", "06:00", "12:00", "18:00"]);
    const badStep = await gantry(["usage", "--step", "30s"]);
    expect(badStep.code).toBe(2);
    expect(badStep.stderr).toMatch(/--step expects/);

    const workers = await ok(["workers", ...ADMIN]);
    expect(headers(workers)).toEqual([
      "ID",
      "POOL",
      "HOST",
      "STATE",
      "GPUS",
      "BUSY",
      "OCCUPANCY",
      "JOBS",
      "LAST SEEN",
    ]);
    expect(workers).toMatch(/gpu\s+\S+\s+alive\s+2xH100\s+[0-2]\/2\s+\[[#.]{2}\]/);
    const list = await json<{ items: { gpus: unknown[]; freeGpuIndices: number[] }[] }>([
      "workers",
      ...ADMIN,
    ]);
    expect(list.items[0]!.gpus).toHaveLength(2);
  });

  it("policies: create, list, show, evaluate, a denied submission (exit 5), delete", async () => {
    const created = await json<{ id: string; scope: string }>([
      "policies",
      "create",
      "--name",
      "no-forbidden",
      "--expression",
      'job.name == "forbidden"',
      "--effect",
      "deny",
      "--message",
      "that name is reserved",
      ...ROOT_KEY,
    ]);
    expect(created.scope).toBe("tenant");
    const listed = await ok(["policies"]);
    expect(headers(listed)).toEqual(["ID", "NAME", "SCOPE", "EFFECT", "ENABLED", "VERSION", "EXPRESSION"]);
    expect(listed).toMatch(/no-forbidden\s+tenant\s+deny\s+yes\s+1/);
    expect(await json(["policies", "list"])).toMatchObject({
      items: [expect.objectContaining({ id: created.id })],
    });
    expect(await ok(["policies", "show", created.id])).toMatch(/^Expression:\s+job.name == "forbidden"$/m);

    const denied = await gantry(["policies", "evaluate", "--name", "forbidden", "--", "true"]);
    expect(denied.code).toBe(5);
    expect(denied.stdout).toMatch(/^Denied\./);
    expect(denied.stdout).toMatch(/no-forbidden\s+tenant\s+deny\s+yes\s+that name is reserved/);
    expect(await json(["policies", "evaluate", "--", "true"])).toMatchObject({ allowed: true });

    const submit = await gantry(["submit", "--name", "forbidden", "--", "true"]);
    expect(submit.code).toBe(5);
    expect(submit.stderr).toMatch(/PolicyDenied/);
    expect(submit.stderr).toMatch(/policy "no-forbidden" \(deny\): that name is reserved/);

    // A member key may not write policies: 403 is exit 3.
    const member = await gantry(["policies", "delete", created.id]);
    expect(member.code).toBe(3);
    expect(await ok(["policies", "delete", created.id, ...ROOT_KEY])).toBe(`Deleted policy ${created.id}.\n`);
    expect((await gantry(["policies", "show", created.id])).code).toBe(4);
  });

  it("pipeline: create from a file, run --wait, show the run; a failing step ends the run failed (exit 1)", async () => {
    const file = path.join(cfg, "pipeline.json");
    const job = (name: string, cmd: string) => ({ name, command: ["sh", "-c", cmd], gpus: 1 });
    fs.writeFileSync(
      file,
      JSON.stringify({
        name: "etl",
        steps: [
          { name: "extract", job: job("extract", "echo e") },
          { name: "transform", job: job("transform", "echo t"), dependsOn: ["extract"] },
          { name: "load", job: job("load", "echo l"), dependsOn: ["transform"] },
        ],
      }),
    );
    const id = (await ok(["pipeline", "create", "-f", file])).trim();
    expect(id).toMatch(/^pipe_/);
    const list = await ok(["pipeline", "list"]);
    expect(headers(list)).toEqual(["ID", "NAME", "VERSION", "STEPS", "UPDATED"]);
    const run = await gantry(["pipeline", "run", id, "--wait"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/State:\s+succeeded/);
    const runId = /Run:\s+(run_\w+)/.exec(run.stdout)![1]!;
    const shown = await json<{ state: string; steps: { name: string; state: string }[] }>([
      "pipeline",
      "show",
      id,
      runId,
    ]);
    expect(shown.state).toBe("succeeded");
    expect(shown.steps.map((x) => x.name)).toEqual(["extract", "transform", "load"]);
    const p = await json<{ steps: unknown[]; runs: unknown[] }>(["pipeline", "show", id]);
    expect(p.runs).toHaveLength(1);
    // A cycle is refused (exit 2: the server said the request is invalid).
    fs.writeFileSync(
      file,
      JSON.stringify({ name: "loop", steps: [{ name: "a", job: job("a", "true"), dependsOn: ["a"] }] }),
    );
    expect((await gantry(["pipeline", "create", "-f", file])).code).toBe(2);
    // A failing middle step: the run ends failed and --wait exits 1.
    fs.writeFileSync(
      file,
      JSON.stringify({
        name: "breaks",
        steps: [
          { name: "one", job: job("one", "true") },
          { name: "two", job: job("two", "exit 4"), dependsOn: ["one"] },
          { name: "three", job: job("three", "true"), dependsOn: ["two"] },
        ],
      }),
    );
    const bad = (await ok(["pipeline", "create", "-f", file])).trim();
    const failed = await gantry(["pipeline", "run", bad, "--wait"]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/three\s+cancelled\s+DependencyFailed/);
  });

  it("submit --array N runs N tasks, each with its own GANTRY_ARRAY_INDEX", async () => {
    const out = await json<{ array: { id: string; size: number } }>([
      "submit",
      "--array",
      "3",
      "--",
      "sh",
      "-c",
      "echo index=$GANTRY_ARRAY_INDEX",
    ]);
    expect(out.array.size).toBe(3);
    const arr = await waitFor(
      async () => {
        const a = await json<{ state: string; counts: Record<string, number> }>(["show", out.array.id]);
        return a.state === "succeeded" ? a : null;
      },
      60_000,
      "array done",
    );
    expect(arr.counts.succeeded).toBe(3);
    const jobs = await json<{ items: { id: string }[] }>(["jobs", "--array", out.array.id]);
    const tails = await Promise.all(jobs.items.map((j) => json<{ tail: string }>(["logs", j.id])));
    expect(tails.map((t) => t.tail.trim()).sort()).toEqual(["index=0", "index=1", "index=2"]);
  });

  it("exit codes for failures: usage 2, auth 3, not found 4, server down 6", async () => {
    const usage = await gantry(["jobs", "--state", "sleeping"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--state must be one of/);
    expect((await gantry(["submit", "--gpus", "2"])).code).toBe(2);
    expect((await gantry(["frobnicate"])).code).toBe(2);
    const invalid = await gantry(["submit", "--gpus", "65", "--", "true"]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/ValidationFailed/);

    const badKey = await gantry(["jobs"], { GANTRY_KEY: "gtk_acme_0000000000000000000000000000000A" });
    expect(badKey.code).toBe(3);
    expect(badKey.stderr).toMatch(/Unauthorized/);
    expect(badKey.stderr).toMatch(/hint: .*gantry login/);
    const notAdmin = await gantry(["workers"]);
    expect(notAdmin.code).toBe(3);
    expect(notAdmin.stderr).toMatch(/platform admin token/);
    const nobody = await gantry(["jobs"], {
      XDG_CONFIG_HOME: fs.mkdtempSync(path.join(os.tmpdir(), "gantry-none-")),
    });
    expect(nobody.code).toBe(3);
    expect(nobody.stderr).toMatch(/gantry login --url URL --key KEY/);

    const missing = await gantry(["show", "job_01doesnotexist0000000000000"]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/Not found/);
    expect((await gantry(["logs", "job_nope", "--json"])).stdout).toBe("");
    expect((await gantry(["admin", "tenant", "show", "nope", ...ADMIN])).code).toBe(4);

    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const down = await gantry(["queue"], { GANTRY_URL: nowhere });
    expect(down.code).toBe(6);
    expect(down.stderr).toMatch(/hint: is the control plane running at/);
    // Following commands report an unreachable server too, instead of waiting for it.
    expect((await gantry(["jobs", "--watch"], { GANTRY_URL: nowhere })).code).toBe(6);
  });

  it("--help for every command; the usage lists every command and the exit codes", async () => {
    const help = await ok(["--help"]);
    for (const c of [
      "login",
      "submit",
      "jobs",
      "show",
      "explain",
      "cancel",
      "logs",
      "queue",
      "workers",
      "policies",
      "pipeline",
      "quota",
      "usage",
      "admin",
      "agent",
    ]) {
      expect(help).toMatch(new RegExp(`^  ${c}\\s`, "m"));
    }
    expect(help).toMatch(/Exit codes:/);
    const subs = await Promise.all(
      [["submit"], ["jobs"], ["logs"], ["policies", "create"], ["admin", "quota", "set"], ["workers"]].map(
        (c) => gantry([...c, "--help"]),
      ),
    );
    for (const r of subs) {
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: gantry /);
    }
  });
});
