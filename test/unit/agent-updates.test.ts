// The update queue: per-job ordering, retries with backoff while the control plane is unreachable,
// heartbeat batches, refusals, and that no update is lost or sent twice after being acknowledged.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JobUpdate } from "../../cli/agent/protocol.ts";
import { type SendOutcome, UpdateQueue } from "../../cli/agent/updates.ts";
import { until } from "./agent-fake-control-plane.ts";

const upd = (jobId: string, state: JobUpdate["state"], lease = 1): JobUpdate => ({ jobId, lease, state });

/** A send function the test answers by hand. */
function manualSend() {
  const calls: { update: JobUpdate; at: number; answer(o: SendOutcome): void }[] = [];
  const send = (update: JobUpdate) =>
    new Promise<SendOutcome>((resolve) => calls.push({ update, at: Date.now(), answer: resolve }));
  return { calls, send };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("UpdateQueue", () => {
  it("sends a job's updates strictly one after another, and different jobs in parallel", async () => {
    const { calls, send } = manualSend();
    const q = new UpdateQueue({ send, maxInFlight: 8 });
    q.push(upd("a", "running"), 1);
    q.push(upd("a", "succeeded"), 1);
    q.push(upd("b", "running"), 1);
    await tick();
    expect(calls.map((c) => `${c.update.jobId}:${c.update.state}`)).toEqual(["a:running", "b:running"]);
    calls[0]!.answer({ kind: "ok" });
    await until(() => calls.length === 3, "a's second update");
    expect(calls[2]!.update).toEqual(upd("a", "succeeded"));
    calls[1]!.answer({ kind: "ok" });
    calls[2]!.answer({ kind: "ok" });
    await q.whenEmpty();
    expect(q.size).toBe(0);
  });

  it("limits parallel status calls", async () => {
    const { calls, send } = manualSend();
    const q = new UpdateQueue({ send, maxInFlight: 3 });
    for (let i = 0; i < 10; i++) q.push(upd(`j${i}`, "running"), 1);
    await tick();
    expect(calls).toHaveLength(3);
    calls[0]!.answer({ kind: "ok" });
    await until(() => calls.length === 4, "next one after an answer");
  });

  it("keeps failed updates, retries one probe at a time with growing backoff, then sends the rest", async () => {
    let failuresLeft = 4;
    const sent: { update: JobUpdate; at: number; ok: boolean }[] = [];
    let inFlight = 0;
    let maxInFlightWhileFailing = 0;
    let recovered = false;
    const q = new UpdateQueue({
      backoff: { initialMs: 20, maxMs: 80, jitter: 0 },
      send: async (update) => {
        inFlight++;
        // Between the first failure and the first success only one probe may be out.
        if (failuresLeft < 4 && !recovered)
          maxInFlightWhileFailing = Math.max(maxInFlightWhileFailing, inFlight);
        await tick();
        inFlight--;
        const ok = failuresLeft-- <= 0;
        if (ok) recovered = true;
        sent.push({ update, at: Date.now(), ok });
        return ok ? { kind: "ok" } : { kind: "retry", error: "503" };
      },
    });
    q.push(upd("a", "running"), 1);
    q.push(upd("b", "running"), 1);
    q.push(upd("a", "failed"), 1);
    await q.whenEmpty();
    const failed = sent.filter((s) => !s.ok);
    expect(failed.length).toBeGreaterThanOrEqual(4);
    // Gaps between failed attempts grow: ~20, 40, 80 ms (plus the send time).
    const gaps = failed.slice(1).map((s, i) => s.at - failed[i]!.at);
    expect(gaps[gaps.length - 1]!).toBeGreaterThanOrEqual(gaps[0]!);
    expect(gaps.at(-1)!).toBeGreaterThanOrEqual(70);
    expect(maxInFlightWhileFailing).toBe(1);
    const delivered = sent.filter((s) => s.ok).map((s) => `${s.update.jobId}:${s.update.state}`);
    expect([...delivered].sort()).toEqual(["a:failed", "a:running", "b:running"]);
    expect(delivered.indexOf("a:running")).toBeLessThan(delivered.indexOf("a:failed"));
  });

  it("waits at least Retry-After", async () => {
    const times: number[] = [];
    const q = new UpdateQueue({
      backoff: { initialMs: 1, maxMs: 1 },
      send: async () => {
        times.push(Date.now());
        return times.length === 1 ? { kind: "retry", error: "429", retryAfterMs: 150 } : { kind: "ok" };
      },
    });
    q.push(upd("a", "running"), 1);
    await q.whenEmpty();
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(140);
  });

  it("drops a refused update and the later ones of the same lease, and says so once", async () => {
    const { calls, send } = manualSend();
    const rejected: string[] = [];
    const q = new UpdateQueue({
      send,
      onRejected: (u, code) => rejected.push(`${u.jobId}:${u.state}:${code}`),
    });
    q.push(upd("a", "running"), 1);
    q.push(upd("a", "failed"), 1);
    q.push(upd("a", "running", 2), 1); // the next attempt has a new lease and survives
    await tick();
    calls[0]!.answer({ kind: "rejected", code: "StaleLease" });
    await until(() => calls.length === 2, "next lease's update");
    expect(calls[1]!.update).toEqual(upd("a", "running", 2));
    expect(rejected).toEqual(["a:running:StaleLease"]);
    calls[1]!.answer({ kind: "ok" });
    await q.whenEmpty();
  });

  it("drops undeliverable updates without retrying", async () => {
    let n = 0;
    const q = new UpdateQueue({
      send: async () => {
        n++;
        return { kind: "drop", error: "400" };
      },
    });
    q.push(upd("a", "running"), 1);
    await q.whenEmpty();
    await tick();
    expect(n).toBe(1);
  });

  it("pauses on 401 until resumed", async () => {
    let unauthorized = 0;
    const { calls, send } = manualSend();
    const q = new UpdateQueue({ send, onUnauthorized: () => unauthorized++ });
    q.push(upd("a", "running"), 1);
    await tick();
    calls[0]!.answer({ kind: "unauthorized" });
    await new Promise((r) => setTimeout(r, 50));
    expect(unauthorized).toBe(1);
    expect(calls).toHaveLength(1);
    expect(q.size).toBe(1);
    q.resume();
    await until(() => calls.length === 2, "resent after resume");
  });

  it("batches pending updates for a heartbeat, skipping jobs with a status call in flight", async () => {
    const { calls, send } = manualSend();
    const rejected: string[] = [];
    const q = new UpdateQueue({
      send,
      maxInFlight: 1,
      onRejected: (u, c) => rejected.push(`${u.jobId}:${c}`),
    });
    q.push(upd("a", "running"), 1); // goes out as a status call at once
    q.push(upd("a", "succeeded"), 1);
    q.push(upd("b", "running"), 1);
    q.push(upd("b", "failed"), 1);
    q.push(upd("c", "running"), 1);
    await tick();
    expect(calls).toHaveLength(1);
    const batch = q.takeBatch();
    expect(batch.map((e) => `${e.update.jobId}:${e.update.state}`)).toEqual([
      "b:running",
      "b:failed",
      "c:running",
    ]);
    expect(q.takeBatch()).toEqual([]); // already in flight
    // The heartbeat failed: all three are pending again and go into the next batch.
    q.releaseBatch(batch);
    const again = q.takeBatch();
    expect(again).toHaveLength(3);
    q.settleBatch(again, [{ jobId: "c", code: "StaleLease" }]);
    expect(rejected).toEqual(["c:StaleLease"]);
    expect(q.size).toBe(2); // a's two updates
    calls[0]!.answer({ kind: "ok" });
    await until(() => calls.length === 2, "a's second update");
    calls[1]!.answer({ kind: "ok" });
    await q.whenEmpty();
  });

  it("caps a batch by count and by log-tail bytes", () => {
    const q = new UpdateQueue({ send: () => new Promise(() => {}), maxInFlight: 0 });
    for (let i = 0; i < 10; i++) q.push({ ...upd(`j${i}`, "succeeded"), logTail: "x".repeat(1000) }, 1);
    expect(q.takeBatch(4)).toHaveLength(4);
    expect(q.takeBatch(100, 2500)).toHaveLength(2);
  });

  it("drops updates of an old registration", async () => {
    const q = new UpdateQueue({ send: () => new Promise(() => {}), maxInFlight: 0 });
    q.push(upd("a", "running"), 1);
    q.push(upd("b", "running"), 2);
    expect(q.dropWhere((e) => e.tag < 2)).toBe(1);
    expect(q.takeBatch().map((e) => e.update.jobId)).toEqual(["b"]);
  });

  it("delivers every update exactly once, in per-job order, whatever fails in between", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(fc.integer({ min: 0, max: 4 }), fc.constantFrom("running", "succeeded", "failed")),
          {
            minLength: 1,
            maxLength: 30,
          },
        ),
        fc.array(fc.constantFrom<"ok" | "retry" | "batch">("ok", "retry", "batch"), {
          minLength: 1,
          maxLength: 40,
        }),
        async (pushes, script) => {
          const delivered: string[] = [];
          let step = 0;
          // The scripted outcomes, then the control plane stays up (so the run must finish).
          const next = () => script[step++] ?? "ok";
          const q = new UpdateQueue({
            backoff: { initialMs: 1, maxMs: 2 },
            maxInFlight: 3,
            send: async (u) => {
              await Promise.resolve();
              if (next() === "retry") return { kind: "retry", error: "x" };
              delivered.push(`${u.jobId}#${u.lease}`);
              return { kind: "ok" };
            },
          });
          for (const [i, [job, state]] of pushes.entries()) {
            q.push({ jobId: `j${job}`, lease: i, state: state as JobUpdate["state"] }, 1);
          }
          // Heartbeats interleave with status calls, sometimes failing.
          while (q.size > 0) {
            const batch = q.takeBatch(3);
            await Promise.resolve();
            if (next() === "retry") q.releaseBatch(batch);
            else {
              for (const e of batch) if (!e.removed) delivered.push(`${e.update.jobId}#${e.update.lease}`);
              q.settleBatch(batch, []);
            }
            await new Promise((r) => setTimeout(r, 1));
          }
          q.close();
          const expected = pushes.map(([job], i) => `j${job}#${i}`);
          expect([...delivered].sort()).toEqual([...expected].sort());
          for (let j = 0; j < 5; j++) {
            const mine = delivered.filter((d) => d.startsWith(`j${j}#`)).map((d) => Number(d.split("#")[1]));
            expect(mine).toEqual([...mine].sort((x, y) => x - y));
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
