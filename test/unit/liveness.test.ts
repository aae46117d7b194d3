// Lazy liveness deadlines: heartbeats write to storage only when their deadlines pass the stored (padded)
// ones, storage never says a worker is due before memory does (so a restart detects death late, never
// early), and memory makes detection on time while the shard lives.
import { describe, expect, it } from "vitest";
import {
  covers,
  deadlinesAt,
  LivenessBook,
  type StoredDeadlines,
  type Timing,
} from "../../src/domain/liveness.ts";

const T: Timing = { heartbeatMs: 10_000, ttlMs: 30_000 };

/** A shard's storage for one worker, written only when the book says so. */
function simulate(book: LivenessBook, beats: number[], t = T) {
  let stored: StoredDeadlines = { suspectAt: null, deadAt: null };
  let writes = 0;
  const checks: { now: number; stored: StoredDeadlines }[] = [];
  for (const now of beats) {
    const w = book.seen("w1", stored, now, t);
    if (w) {
      stored = { suspectAt: w.suspectAt, deadAt: w.deadAt };
      writes++;
    }
    checks.push({ now, stored });
  }
  return { stored, writes, checks };
}

describe("liveness book", () => {
  it("writes about every other heartbeat at the normal interval, and once per interval when they come faster", () => {
    const steady = simulate(
      new LivenessBook(),
      Array.from({ length: 100 }, (_, i) => i * T.heartbeatMs),
    );
    expect(steady.writes).toBe(50);
    // A storm: a heartbeat every 5 ms for 60 s.
    const storm = simulate(
      new LivenessBook(),
      Array.from({ length: 12_000 }, (_, i) => i * 5),
    );
    expect(storm.writes).toBe(6);
  });

  it("after any heartbeat, storage covers the true deadlines, late by at most one interval", () => {
    // Irregular heartbeats: bursts, gaps, late ones, equal timestamps.
    let now = 1_700_000_000_000;
    const beats: number[] = [];
    let seed = 7;
    for (let i = 0; i < 5_000; i++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      now += seed % 7 === 0 ? 0 : seed % 25_000;
      beats.push(now);
    }
    const book = new LivenessBook();
    const { checks } = simulate(book, beats);
    for (const { now: at, stored } of checks) {
      const truth = deadlinesAt(at, T);
      expect(covers(stored, truth)).toBe(true);
      expect(stored.suspectAt! - truth.suspectAt).toBeLessThanOrEqual(T.heartbeatMs);
      expect(stored.deadAt! - truth.deadAt).toBeLessThanOrEqual(T.heartbeatMs);
    }
    // Memory holds the exact deadlines of the last heartbeat.
    expect(book.get("w1")).toEqual(deadlinesAt(beats.at(-1)!, T));
  });

  it("a forced write (a state change) always returns the padded deadlines", () => {
    const book = new LivenessBook();
    const stored = { suspectAt: 10 ** 15, deadAt: 10 ** 15 };
    expect(book.seen("w1", stored, 1_000, T)).toBeNull();
    expect(book.seen("w1", stored, 2_000, T, true)).toEqual({
      lastSeen: 2_000,
      suspectAt: 2_000 + 3 * T.heartbeatMs,
      deadAt: 2_000 + T.ttlMs + T.heartbeatMs,
    });
  });

  it("memory decides what is due; storage only where memory knows nothing", () => {
    const book = new LivenessBook();
    const stored = { suspectAt: 50_000, deadAt: 70_000 };
    book.seen("w1", { suspectAt: 100_000, deadAt: 100_000 }, 0, T); // truth: suspect at 20 s, dead at 30 s
    expect(book.effective("w1", stored)).toEqual({ suspectAt: 20_000, deadAt: 30_000 });
    expect(book.effective("w2", stored)).toEqual(stored);
    expect(book.due(19_999)).toEqual([]);
    expect(book.due(20_000)).toEqual(["w1"]);
    book.forget("w1");
    expect(book.due(20_000)).toEqual([]);
    expect(book.effective("w1", stored)).toEqual(stored);
  });

  it("earliest deadlines count suspicion only for live workers and death for suspect ones too", () => {
    const book = new LivenessBook();
    const far = { suspectAt: 10 ** 15, deadAt: 10 ** 15 };
    book.seen("alive", far, 5_000, T); // 25 s / 35 s
    book.seen("suspect", far, 1_000, T); // 21 s / 31 s
    book.seen("gone", far, 0, T); // 20 s / 30 s
    const states: Record<string, "alive" | "suspect" | null> = {
      alive: "alive",
      suspect: "suspect",
      gone: null,
    };
    expect(book.earliest((id) => states[id] ?? null)).toEqual({ suspectAt: 25_000, deadAt: 31_000 });
    book.forget();
    expect(book.earliest(() => "alive")).toEqual({ suspectAt: null, deadAt: null });
    expect(book.size).toBe(0);
  });
});
