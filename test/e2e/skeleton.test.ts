// Issue 2's end-to-end proof: real wrangler dev + real agent process + real Postgres. One job succeeds
// with its output and GPU index, one fails with its exit code, the history reaches Postgres within 2 s,
// and everything survives a restart on the same data directory.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AgentProc,
  bootstrap,
  call,
  job,
  must,
  pgQuery,
  type Server,
  startAgent,
  startServer,
  waitFor,
  waitForState,
} from "./support.ts";

describe("walking skeleton, end to end", () => {
  let s: Server;
  let agent: AgentProc | null = null;
  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(async () => {
    agent?.kill("SIGKILL");
    await s?.destroy();
  });

  it("submits to a real agent, records history in Postgres, survives a restart", async () => {
    const b = await bootstrap(s);
    agent = startAgent(s, b.joinToken, "fake:2xH100", ["--log-level", "debug"]);
    await waitFor(
      async () => {
        const w = await must<{ items: { state: string }[] }>(s, "GET", "/v1/workers", s.admin);
        return w.items.some((x) => x.state === "alive" || x.state === "starting");
      },
      30_000,
      "agent registered",
    );

    const hello = await must<{ id: string }>(s, "POST", "/v1/jobs", b.key, {
      name: "hello",
      command: ["sh", "-c", "echo hello; echo $CUDA_VISIBLE_DEVICES"],
      gpus: 1,
    });
    const fails = await must<{ id: string }>(s, "POST", "/v1/jobs", b.key, {
      name: "fails",
      command: ["sh", "-c", "exit 3"],
      gpus: 1,
    });
    const ok = await waitForState(s, b.key, hello.id, ["succeeded", "failed"]);
    expect(ok).toMatchObject({ state: "succeeded", exitCode: 0, attempt: 1 });
    const logs = await must<{ tail: string }>(s, "GET", `/v1/jobs/${hello.id}/logs`, b.key);
    expect(logs.tail).toMatch(/hello\n[01]\n/);
    expect(logs.tail.trim().split("\n")[1]).toBe(String((ok.gpuIndices as number[])[0]));
    const bad = await waitForState(s, b.key, fails.id, ["succeeded", "failed"]);
    expect(bad).toMatchObject({ state: "failed", exitCode: 3 });
    // Once the live channel is up the agent heartbeats over it, and the Worker answers those frames like
    // the HTTP heartbeat route (a failed answer would make the agent fall back to HTTP and log so).
    const beats = () =>
      (agent?.output() ?? "")
        .split("\n")
        .filter((l) => l.includes('"msg":"heartbeat delivered"'))
        .map((l) => JSON.parse(l) as { via: string });
    await waitFor(
      async () => beats().filter((d) => d.via === "channel").length >= 2,
      10_000,
      "channel beats",
    );
    expect(agent.output()).not.toMatch(/refused a heartbeat on the live channel|stopped answering/);

    // Both jobs and every transition are in Postgres (queried directly) within 2 s.
    const ended = Date.now();
    const history = await waitFor(
      async () => {
        const jobs = await pgQuery<{ id: string; state: string; exit_code: number | null }>(
          s.databaseUrl,
          "SELECT id, state, exit_code FROM jobs WHERE id = ANY($1) ORDER BY id",
          [[hello.id, fails.id]],
        );
        const events = await pgQuery<{ job_id: string; to_state: string }>(
          s.databaseUrl,
          "SELECT job_id, to_state FROM job_events WHERE job_id = ANY($1) ORDER BY seq",
          [[hello.id, fails.id]],
        );
        const done = jobs.length === 2 && jobs.every((j) => j.state === "succeeded" || j.state === "failed");
        return done && events.length >= 8 ? { jobs, events } : null;
      },
      5_000,
      "history in Postgres",
    );
    expect(Date.now() - ended).toBeLessThan(2_000);
    const trail = (id: string) => history.events.filter((e) => e.job_id === id).map((e) => e.to_state);
    expect(trail(hello.id)).toEqual(["queued", "scheduled", "running", "succeeded"]);
    expect(trail(fails.id)).toEqual(["queued", "scheduled", "running", "failed"]);
    const listed = await must<{ items: { id: string }[] }>(s, "GET", "/v1/jobs", b.key);
    expect(listed.items.map((j) => j.id).sort()).toEqual([hello.id, fails.id].sort());

    // Stop everything, start again on the same data directory: the jobs are still there.
    agent.kill("SIGKILL");
    s = await s.restart();
    expect((await job(s, b.key, hello.id)).state).toBe("succeeded");
    expect((await job(s, b.key, fails.id)).exitCode).toBe(3);
    const again = await must<{ items: { id: string }[] }>(s, "GET", "/v1/jobs", b.key);
    expect(again.items).toHaveLength(2);
    const health = await call(s, "GET", "/healthz");
    expect(health.status).toBe(200);
  });
});
