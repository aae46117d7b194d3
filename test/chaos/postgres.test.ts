// Postgres away for 60 s under load: submissions and scheduling go on (the Durable Objects are the truth and
// nothing on the submit, heartbeat or status path touches Postgres); when it returns the outboxes drain and
// the history is complete and duplicate-free: every acknowledged job once, each of its events once.
// Embedded database: PGlite really stops and restarts on the same directory. DATABASE_URL: the shared
// server cannot be stopped, so the Worker's route to it is cut instead (see support.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keepAliveAgent, requestJson } from "../../bench/lib/http.ts";
import { SimWorker } from "../../bench/lib/simworker.ts";
import { call, must, pgQuery, waitFor } from "../e2e/support.ts";
import { type ChaosServer, startChaosServer } from "./support.ts";

const OUTAGE_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sub {
  name: string;
  id: string | null;
  status: number;
  sentAt: number;
  phase: "before" | "during" | "after";
}

describe("Postgres stopped for 60 s under load", () => {
  let s: ChaosServer;
  let key = "";
  const subs: Sub[] = [];
  const finishedAt = new Map<string, number>(); // job id → when its worker's success report was accepted
  const workers: SimWorker[] = [];
  let outage = { from: 0, to: 0 };
  /** Status of a Postgres-backed read (GET /v1/jobs lists from the history) in the middle of the outage. */
  let listDuringOutage = 0;
  /** From Postgres coming back until it held every job acknowledged during the outage, as succeeded. */
  let drainMs = -1;

  beforeAll(async () => {
    // The cron tick (every 15 s here, every minute when deployed) also flushes outboxes; with the outbox's own
    // retry backoff (1 s doubling to 60 s) alone the drain could take up to a minute after Postgres returns.
    s = await startChaosServer({ heartbeatSeconds: 2, leaseTtlSeconds: 20, cronSeconds: 15 });
    await must(s, "POST", "/v1/tenants", s.admin, { id: "pgdown" });
    key = (
      await must<{ key: string }>(s, "POST", "/v1/tenants/pgdown/keys", s.admin, {
        name: "alice",
        role: "member",
      })
    ).key;
    await must(s, "POST", "/v1/pools", s.admin, { id: "sim" });
    const join = (await must<{ token: string }>(s, "POST", "/v1/pools/sim/join-tokens", s.admin, {})).token;
    // Registration writes Postgres, so the fleet joins before the outage; then it only heartbeats and reports.
    const http = keepAliveAgent(64);
    for (let i = 0; i < 4; i++) {
      const w = new SimWorker({
        url: s.url,
        joinToken: join,
        gpus: 8,
        gpuType: "SIMPG",
        hostname: `sim-${i}`,
        agent: http,
        onFinished: (id, at) => finishedAt.set(id, at),
      });
      await w.register();
      await w.connect();
      w.startHeartbeats(2000);
      workers.push(w);
    }

    // ~20 submissions/s from 4 clients for 5 s before, the 60 s outage, and 10 s after.
    let phase: Sub["phase"] = "before";
    let n = 0;
    let stop = false;
    const client = async () => {
      while (!stop) {
        const sub: Sub = { name: `pg-${n++}`, id: null, status: 0, sentAt: Date.now(), phase };
        try {
          const r = await requestJson<{ id: string }>(s.url, "POST", "/v1/jobs", {
            token: key,
            agent: http,
            body: { name: sub.name, command: ["true"], gpus: 1, gpuType: "SIMPG" },
            timeoutMs: 15_000,
          });
          sub.status = r.status;
          if (r.status === 201) sub.id = r.body.id;
        } catch {
          sub.status = -1;
        }
        subs.push(sub);
        await sleep(200);
      }
    };
    const clients = Array.from({ length: 4 }, client);
    await sleep(5000);
    phase = "during";
    outage.from = Date.now();
    await s.stopDatabase();
    await sleep(OUTAGE_MS / 2);
    // Proof the outage is real for the Worker: a read served from Postgres fails meanwhile.
    listDuringOutage = (await call(s, "GET", "/v1/jobs?limit=1", key)).status;
    await sleep(OUTAGE_MS / 2);
    await s.startDatabase();
    outage = { ...outage, to: Date.now() };
    phase = "after";
    // How long the outboxes take to catch up (their retry backoff has grown to tens of seconds by now).
    const missed = subs.filter((x) => x.phase === "during" && x.id).map((x) => x.id!);
    const drained = waitFor(
      async () => {
        const r = await pgQuery<{ n: string }>(
          s.databaseUrl,
          "SELECT count(*) AS n FROM jobs WHERE tenant_id = 'pgdown' AND state = 'succeeded' AND id = ANY($1)",
          [missed],
        );
        return Number(r[0]!.n) === missed.length;
      },
      150_000,
      "outage backlog in Postgres",
    ).then(() => {
      drainMs = Date.now() - outage.to;
    });
    await sleep(10_000);
    stop = true;
    await Promise.all(clients);
    await drained;
  });

  afterAll(async () => {
    for (const w of workers) w.stop();
    await s?.destroy();
  });

  it("kept accepting submissions while Postgres was down", () => {
    expect(listDuringOutage).toBeGreaterThanOrEqual(500);
    const during = subs.filter((x) => x.phase === "during");
    expect(during.length).toBeGreaterThan(200);
    const refused = during.filter((x) => x.status !== 201);
    expect(refused.map((x) => `${x.name}:${x.status}`)).toEqual([]);
  });

  it("kept scheduling and running jobs while Postgres was down", async () => {
    const during = subs.filter((x) => x.phase === "during" && x.id);
    const ranDuring = during.filter((x) => (finishedAt.get(x.id!) ?? Number.POSITIVE_INFINITY) < outage.to);
    // Everything submitted up to a few seconds before the end of the outage ran during it.
    const early = during.filter((x) => x.sentAt < outage.to - 5000);
    expect(early.length).toBeGreaterThan(100);
    expect(early.filter((x) => !ranDuring.includes(x)).map((x) => x.name)).toEqual([]);
    // The tenant's object says so too (read from the object, not from Postgres).
    for (const x of ranDuring.slice(0, 20)) {
      const j = await must<{ state: string }>(s, "GET", `/v1/jobs/${x.id}`, key);
      expect(j.state).toBe("succeeded");
    }
  });

  it("after Postgres returns the outbox drains: every job and every event exactly once", async () => {
    const acked = subs.filter((x) => x.id);
    // Every acknowledged job runs to completion…
    await waitFor(async () => acked.every((x) => finishedAt.has(x.id!)), 60_000, "every job finished");
    // …and Postgres catches up with all of it: each job present and succeeded.
    const rows = await waitFor(
      async () => {
        const r = await pgQuery<{ id: string; name: string; state: string }>(
          s.databaseUrl,
          "SELECT id, name, state FROM jobs WHERE tenant_id = 'pgdown'",
        );
        const done = new Set(r.filter((x) => x.state === "succeeded").map((x) => x.id));
        return acked.every((x) => done.has(x.id!)) ? r : null;
      },
      150_000,
      "Postgres history complete",
    );
    const names = new Map<string, number>();
    for (const r of rows) names.set(r.name, (names.get(r.name) ?? 0) + 1);
    expect([...names].filter(([, n]) => n > 1)).toEqual([]);
    expect(rows.length).toBe(acked.length);

    // Events: Postgres holds exactly the transitions the tenant's object recorded, each once.
    const events = await pgQuery<{ job_id: string; seq: string; to_state: string }>(
      s.databaseUrl,
      "SELECT job_id, seq, to_state FROM job_events WHERE tenant_id = 'pgdown' ORDER BY seq",
    );
    const pgByJob = new Map<string, string[]>();
    for (const e of events)
      pgByJob.set(e.job_id, [...(pgByJob.get(e.job_id) ?? []), `${e.seq}:${e.to_state}`]);
    for (let i = 0; i < acked.length; i += 25) {
      await Promise.all(
        acked.slice(i, i + 25).map(async (x) => {
          const r = await call<{ items: { seq: number; to: string }[] }>(
            s,
            "GET",
            `/v1/jobs/${x.id}/events`,
            key,
          );
          expect(r.status).toBe(200);
          const api = r.body.items.map((e) => `${e.seq}:${e.to}`);
          expect(pgByJob.get(x.id!) ?? [], x.name).toEqual(api);
          expect(api.map((e) => e.split(":")[1])).toEqual(["queued", "scheduled", "running", "succeeded"]);
        }),
      );
    }
    console.log(
      `postgres outage: ${acked.length} jobs acknowledged (${subs.filter((x) => x.phase === "during" && x.id).length} during the ${OUTAGE_MS / 1000} s outage); outage backlog in Postgres ${drainMs} ms after it returned; ${events.length} events; GET /v1/jobs during the outage: ${listDuringOutage}`,
    );
  });
});
