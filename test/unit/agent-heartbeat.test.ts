// Heartbeat pacing: regular interval, prompt heartbeats after changes, coalescing, never two in flight.
import { describe, expect, it } from "vitest";
import { HeartbeatPacer } from "../../cli/agent/heartbeat.ts";

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("HeartbeatPacer", () => {
  it("beats at once, then every interval", async () => {
    const at: number[] = [];
    const p = new HeartbeatPacer({
      intervalMs: 60,
      minGapMs: () => 10,
      beat: async () => void at.push(Date.now()),
    });
    const t0 = Date.now();
    p.start();
    await wait(200);
    await p.stop();
    expect(at[0]! - t0).toBeLessThan(30);
    expect(at.length).toBeGreaterThanOrEqual(3);
    expect(at.length).toBeLessThanOrEqual(5);
  });

  it("a kick brings the next heartbeat forward, but not closer than minGap", async () => {
    const at: number[] = [];
    const p = new HeartbeatPacer({
      intervalMs: 10_000,
      minGapMs: () => 50,
      beat: async () => void at.push(Date.now()),
    });
    p.start();
    await wait(10);
    p.kick();
    await wait(120);
    await p.stop();
    expect(at).toHaveLength(2);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(45);
  });

  it("coalesces many kicks and never overlaps heartbeats", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let beats = 0;
    const p = new HeartbeatPacer({
      intervalMs: 10_000,
      minGapMs: () => 0,
      beat: async () => {
        beats++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await wait(30);
        inFlight--;
      },
    });
    p.start();
    for (let i = 0; i < 100; i++) {
      p.kick();
      await wait(1);
    }
    await wait(80);
    await p.stop();
    expect(maxInFlight).toBe(1);
    expect(beats).toBeLessThan(10);
    expect(beats).toBeGreaterThanOrEqual(2);
  });

  it("keeps going when a heartbeat throws", async () => {
    let n = 0;
    const p = new HeartbeatPacer({
      intervalMs: 20,
      minGapMs: () => 0,
      beat: async () => {
        n++;
        throw new Error("boom");
      },
    });
    p.start();
    await wait(100);
    await p.stop();
    expect(n).toBeGreaterThanOrEqual(3);
  });
});
