// /metrics: Prometheus text with the families the issue names, fed by real activity; admin only.
import { describe, expect, it } from "vitest";
import {
  ADMIN,
  api,
  awaitAssignments,
  complete,
  createPool,
  createTenant,
  expectProblem,
  gpuTypeName,
  registerWorker,
  submit,
  until,
} from "./helpers.ts";

describe("metrics", () => {
  it("exposes queue depth, jobs by state, latency histograms, heartbeats, workers and outbox lag", async () => {
    const type = gpuTypeName("MX");
    const t = await createTenant();
    const pool = await createPool();
    const w = await registerWorker(pool.joinToken, 1, type);
    for (let i = 0; i < 3; i++) await submit(t.memberKey, { gpuType: type, priority: i ? "low" : "high" });
    const [a] = await awaitAssignments(w);
    await complete(w, a!);
    await submit(t.memberKey, { gpuType: type }); // carries the earlier submits' latencies
    const text = await until(
      async () => {
        const r = await api("GET", "/metrics", { token: ADMIN });
        expect(r.status).toBe(200);
        expect(r.headers.get("content-type")).toContain("text/plain");
        return r.text.includes(`gantry_jobs{tenant="${t.id}",state="succeeded"} 1`) ? r.text : null;
      },
      10_000,
      "metrics reflect the finished job",
    );
    expect(text).toMatch(new RegExp(`gantry_queue_depth\\{tenant="${t.id}",priority="low"\\} \\d`));
    expect(text).toMatch(/gantry_submit_duration_seconds_count [1-9]/);
    expect(text).toMatch(/gantry_queue_wait_seconds_bucket\{le="\+Inf"\} [1-9]/);
    expect(text).toMatch(/gantry_scheduling_pass_duration_seconds_count [1-9]/);
    expect(text).toMatch(/gantry_heartbeats_total\{shard="shard-\d+"\} [1-9]/);
    expect(text).toMatch(/gantry_workers\{state="alive"\} [1-9]/);
    expect(text).toContain(`gantry_outbox_lag_seconds{object="tenant:${t.id}"}`);
    // Every sample line belongs to a family announced just before it (one TYPE per family).
    const types = text
      .split("\n")
      .filter((l) => l.startsWith("# TYPE"))
      .map((l) => l.split(" ")[2]);
    expect(new Set(types).size).toBe(types.length);
    expectProblem(await api("GET", "/metrics", { token: t.adminKey }), 403);
    expectProblem(await api("GET", "/metrics"), 401);
  });
});
