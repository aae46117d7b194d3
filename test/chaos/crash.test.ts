// kill -9 of the runtime (wrangler dev and its workerd processes) under 50-connection submit load, restart on
// the same data directory: every submission acknowledged with a 2xx exists exactly once — in the tenant's
// object (the API) and, once the outbox drained, in Postgres — scheduling resumes, and clients retrying with
// the same Idempotency-Key through the crash end up with exactly one job.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keepAliveAgent, requestJson } from "../../bench/lib/http.ts";
import { type AgentProc, call, must, pgQuery, startAgent, waitFor } from "../e2e/support.ts";
import { type ChaosServer, startChaosServer } from "./support.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const job = (name: string, gpuType: string) => ({ name, command: ["true"], gpus: 1, gpuType });

describe("kill -9 the runtime under submit load", () => {
  let s: ChaosServer;
  let key = "";
  let agent: AgentProc | null = null;
  const acked = new Map<string, string>(); // job name → id, for every 2xx
  let attempts = 0;
  let failures = 0;
  let ackedAfterRestart = 0;
  /** Idempotent clients: key → every id a 2xx returned, and when. */
  const idem = new Map<
    string,
    { ids: Set<string>; before: number; after: number; sentBeforeKill: boolean }
  >();
  let killedPids: number[] = [];
  let downMs = 0;

  beforeAll(async () => {
    s = await startChaosServer({ heartbeatSeconds: 1, leaseTtlSeconds: 10 });
    await must(s, "POST", "/v1/tenants", s.admin, { id: "crash" });
    key = (
      await must<{ key: string }>(s, "POST", "/v1/tenants/crash/keys", s.admin, {
        name: "alice",
        role: "member",
      })
    ).key;
    await must(s, "POST", "/v1/pools", s.admin, { id: "gpu" });
    const join = (await must<{ token: string }>(s, "POST", "/v1/pools/gpu/join-tokens", s.admin, {})).token;
    // A real agent that lives through the crash: it must run new work once the control plane is back.
    agent = startAgent(s, join, "fake:2xH100");
    await waitFor(async () => agent?.workerId(), 30_000, "agent registered");

    const http = keepAliveAgent(64);
    let stop = false;
    let crashed = false;
    let restarted = false;
    let n = 0;
    // 50 connections submitting back to back. Jobs ask for a GPU type no worker has: they stay queued, so
    // every one of them is still in the tenant's object after the restart.
    const load = Array.from({ length: 50 }, async () => {
      while (!stop) {
        const name = `load-${n++}`;
        attempts++;
        try {
          const r = await requestJson<{ id: string }>(s.url, "POST", "/v1/jobs", {
            token: key,
            body: job(name, "NOPE"),
            agent: http,
            timeoutMs: 15_000,
          });
          if (r.status >= 200 && r.status < 300) {
            acked.set(name, r.body.id);
            if (restarted) ackedAfterRestart++;
          } else failures++;
        } catch {
          failures++;
          await sleep(50); // connection refused while the runtime is down: do not spin
        }
      }
    });
    // Clients that retry one submission with its Idempotency-Key until they get an answer after the
    // restart; they start just before the kill so some requests are in flight when it lands.
    const idemClients = (count: number) =>
      Array.from({ length: count }, async (_, k) => {
        const ikey = `idem-${k}`;
        const rec = { ids: new Set<string>(), before: 0, after: 0, sentBeforeKill: !crashed };
        idem.set(ikey, rec);
        while (!(restarted && rec.after > 0)) {
          const wasRestarted = restarted;
          try {
            const r = await requestJson<{ id: string }>(s.url, "POST", "/v1/jobs", {
              token: key,
              body: job(ikey, "NOPE"),
              headers: { "idempotency-key": ikey },
              agent: http,
              timeoutMs: 15_000,
            });
            if (r.status === 201 || r.status === 200) {
              rec.ids.add(r.body.id);
              if (wasRestarted) rec.after++;
              else rec.before++;
            }
          } catch {
            // the runtime is gone: retry, as a client would
          }
          await sleep(20 + k);
        }
      });

    await sleep(3000);
    const idemDone = Promise.all(idemClients(10));
    await sleep(150);
    const t0 = Date.now();
    killedPids = (await s.kill9()).killed;
    crashed = true;
    await sleep(500);
    await s.restart();
    downMs = Date.now() - t0;
    restarted = true;
    await sleep(1500);
    stop = true;
    await Promise.all(load);
    await idemDone;
    http.destroy();
  });

  afterAll(async () => {
    agent?.kill("SIGKILL");
    await s?.destroy();
  });

  it("killed wrangler and its workerd processes, then came back on the same data directory", () => {
    expect(killedPids.length).toBeGreaterThanOrEqual(2); // wrangler (node) + at least one workerd
    expect(acked.size).toBeGreaterThan(100);
    expect(ackedAfterRestart).toBeGreaterThan(0);
    console.log(
      `crash: ${attempts} submits, ${acked.size} acknowledged (${ackedAfterRestart} after the restart), ${failures} failed; down ${downMs} ms; killed pids ${killedPids.join(",")}`,
    );
  });

  it("every acknowledged job is in the tenant's object exactly once", async () => {
    const entries = [...acked];
    for (let i = 0; i < entries.length; i += 25) {
      await Promise.all(
        entries.slice(i, i + 25).map(async ([name, id]) => {
          const r = await call<{ name: string; state: string }>(s, "GET", `/v1/jobs/${id}`, key);
          expect(r.status, `${name} ${id}`).toBe(200);
          expect(r.body.name).toBe(name);
          expect(r.body.state).toBe("queued");
        }),
      );
    }
    // The object holds no more jobs than were attempted (Postgres is compared once the outbox drained).
    const q = await must<{ counts: { byState: Record<string, number> } }>(s, "GET", "/v1/queue", key);
    expect(q.counts.byState.queued).toBeGreaterThanOrEqual(acked.size);
    expect(q.counts.byState.queued).toBeLessThanOrEqual(attempts + idem.size);
  });

  it("after the outbox drains, Postgres has every acknowledged job exactly once", async () => {
    const names = new Set(acked.keys());
    // Every job the tenant's object holds (acknowledged or not) — all of them queued — reaches Postgres.
    const q = await must<{ counts: { byState: Record<string, number> } }>(s, "GET", "/v1/queue", key);
    const rows = await waitFor(
      async () => {
        const r = await pgQuery<{ id: string; name: string }>(
          s.databaseUrl,
          "SELECT id, name FROM jobs WHERE tenant_id = 'crash' AND gpu_type = 'NOPE'",
        );
        const have = new Set(r.map((x) => x.name));
        return r.length >= q.counts.byState.queued! && [...names].every((n) => have.has(n)) ? r : null;
      },
      150_000,
      "every acknowledged job in Postgres",
    );
    const byName = new Map<string, string[]>();
    for (const r of rows) byName.set(r.name, [...(byName.get(r.name) ?? []), r.id]);
    const doubled = [...byName].filter(([, ids]) => ids.length > 1);
    expect(doubled).toEqual([]);
    expect(rows.length).toBe(q.counts.byState.queued);
    for (const [name, id] of acked) expect(byName.get(name), name).toEqual([id]);
    // Jobs that committed but whose answer was lost in the crash are fine, if they exist in the API too.
    for (const r of rows.filter((x) => !acked.has(x.name))) {
      expect((await call(s, "GET", `/v1/jobs/${r.id}`, key)).status).toBe(200);
    }
  });

  it("retrying with the same Idempotency-Key through the crash creates exactly one job", async () => {
    expect(idem.size).toBe(10);
    for (const [ikey, rec] of idem) {
      expect(rec.after, `${ikey} answered after the restart`).toBeGreaterThan(0);
      expect([...rec.ids], `${ikey}: one job id across the crash`).toHaveLength(1);
    }
    // At least one client was mid-retry when the runtime died and got the same job back afterwards.
    expect([...idem.values()].some((r) => r.sentBeforeKill && r.after > 0)).toBe(true);
    const rows = await waitFor(
      async () => {
        const r = await pgQuery<{ name: string; n: string }>(
          s.databaseUrl,
          "SELECT name, count(*) AS n FROM jobs WHERE tenant_id = 'crash' AND name LIKE 'idem-%' GROUP BY name",
        );
        return r.length === idem.size ? r : null;
      },
      150_000,
      "idempotent jobs in Postgres",
    );
    for (const r of rows) expect(Number(r.n), r.name).toBe(1);
  });

  it("scheduling resumes: the agent runs new jobs after the restart", async () => {
    const ids = await Promise.all(
      [0, 1, 2].map(
        async (i) => (await must<{ id: string }>(s, "POST", "/v1/jobs", key, job(`after-${i}`, "H100"))).id,
      ),
    );
    for (const id of ids) {
      await waitFor(
        async () => (await must<{ state: string }>(s, "GET", `/v1/jobs/${id}`, key)).state === "succeeded",
        60_000,
        `job ${id} succeeded`,
      );
    }
  });
});
