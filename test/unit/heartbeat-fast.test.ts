// The live channel checks heartbeat frames by hand before it falls back to zod (src/protocol/heartbeat-fast.ts).
// The hand check must never accept what the schema refuses, must return what the schema returns, and should
// take every valid frame that holds no NUL (those the schema rewrites), or it saves nothing.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ChannelHeartbeatSchema, HeartbeatBodySchema } from "../../src/protocol/heartbeat.ts";
import { fastChannelHeartbeat, fastHeartbeatBody } from "../../src/protocol/heartbeat-fast.ts";

const text = (max: number) =>
  fc.oneof(
    fc.string({ maxLength: max }),
    fc.string({ unit: fc.constantFrom("a", "\u0000", "é", "\uD83D"), maxLength: max }),
  );

/** Values near and beyond every limit, and of the wrong kinds. */
const integer = fc.oneof(
  fc.integer({ min: -3, max: 1_000_000 }),
  fc.constantFrom(0, -0, 1.5, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, 1e300),
  fc.constantFrom("1", null, true),
);

const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const running = fc.record(
  { jobId: fc.oneof(text(210), fc.constant(7)), lease: integer, extra: fc.constant(1) },
  { requiredKeys: [] },
);

const update = fc.record(
  {
    jobId: text(210),
    lease: integer,
    state: fc.constantFrom("running", "succeeded", "failed", "cancelled", "lost", 3),
    exitCode: fc.oneof(integer, fc.constant(null)),
    message: fc.oneof(text(20), fc.constant(null), fc.constant(1)),
    reason: fc.oneof(text(70), fc.constant(null)),
    logTail: fc.oneof(text(20), fc.constant(null)),
    other: fc.constant("x"),
  },
  { requiredKeys: [] },
);

const frame = fc.record(
  {
    type: fc.constantFrom("heartbeat", "heartbeat", "hb", 1),
    id: fc.oneof(text(70), fc.constant(5)),
    running: fc.oneof(fc.array(running, { maxLength: 4 }), fc.constant({})),
    updates: fc.oneof(fc.array(update, { maxLength: 4 }), fc.constant(null)),
    more: fc.constant(true),
  },
  { requiredKeys: [] },
);

/** Mostly valid frames: the schema's own shape with valid values, so the property sees many accepted ones. */
const validish = fc.record(
  {
    type: fc.constant("heartbeat"),
    id: fc.string({ minLength: 1, maxLength: 64 }),
    running: fc.array(fc.record({ jobId: fc.string({ maxLength: 200 }), lease: fc.nat() }), { maxLength: 4 }),
    updates: optional(
      fc.array(
        fc.record(
          {
            jobId: fc.string({ maxLength: 200 }),
            lease: fc.nat(),
            state: fc.constantFrom("running", "succeeded", "failed", "cancelled"),
            exitCode: fc.oneof(fc.integer(), fc.constant(null)),
            message: fc.oneof(text(30), fc.constant(null)),
            reason: fc.oneof(text(64), fc.constant(null)),
            logTail: fc.oneof(text(30), fc.constant(null)),
          },
          { requiredKeys: ["jobId", "lease", "state"] },
        ),
        { maxLength: 4 },
      ),
    ),
  },
  { requiredKeys: ["type", "id", "running"] },
);

const hasNul = (v: unknown) => JSON.stringify(v).includes("\\u0000");

/** The hand check against its schema on the same parsed JSON text (what the channel or the route has). */
function check(
  input: unknown,
  fastCheck: (raw: unknown) => unknown = fastChannelHeartbeat,
  schemaOf: { safeParse(v: unknown): { success: boolean; data?: unknown } } = ChannelHeartbeatSchema,
) {
  const raw: unknown = JSON.parse(JSON.stringify(input));
  const fast = fastCheck(raw);
  const schema = schemaOf.safeParse(JSON.parse(JSON.stringify(input)));
  if (fast) {
    expect(schema.success).toBe(true);
    expect(fast).toEqual(schema.data);
  } else if (schema.success) {
    expect(hasNul(raw)).toBe(true); // the only valid ones left to the schema: it rewrites their NULs
  }
  return { fast: fast !== null, valid: schema.success };
}

describe("fastChannelHeartbeat", () => {
  it("accepts exactly the valid frames without NUL, returning what the schema returns", () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.oneof(frame, validish), (f) => {
        if (check(f).fast) accepted++;
      }),
      { numRuns: 5000 },
    );
    expect(accepted).toBeGreaterThan(500); // the property saw the fast path taken, not only refusals
  });

  it("holds at the limits", () => {
    const base = { type: "heartbeat", id: "h1", running: [] as unknown[] };
    const u = { jobId: "j", lease: 0, state: "succeeded" };
    const cases: unknown[] = [
      base,
      { ...base, id: "x".repeat(64) },
      { ...base, id: "x".repeat(65) },
      { ...base, id: "" },
      { ...base, running: Array.from({ length: 4096 }, (_, i) => ({ jobId: `j${i}`, lease: i })) },
      { ...base, running: Array.from({ length: 4097 }, (_, i) => ({ jobId: `j${i}`, lease: i })) },
      { ...base, updates: Array.from({ length: 2000 }, () => u) },
      { ...base, updates: Array.from({ length: 2001 }, () => u) },
      { ...base, updates: [{ ...u, message: "m".repeat(4096) }] },
      { ...base, updates: [{ ...u, message: "m".repeat(4097) }] },
      { ...base, updates: [{ ...u, logTail: "t".repeat(70_000) }] },
      { ...base, updates: [{ ...u, logTail: "t".repeat(70_001) }] },
      { ...base, updates: [{ ...u, jobId: "j".repeat(200) }] },
      { ...base, updates: [{ ...u, jobId: "j".repeat(201) }] },
      { ...base, updates: [{ ...u, lease: -1 }] },
      { ...base, updates: [{ ...u, logTail: "a\u0000b" }] },
      { ...base, running: [{ jobId: "j", lease: -5 }] }, // running leases may be any integer
      { ...base, running: [{ jobId: "j" }] },
      JSON.parse('{"type":"heartbeat","id":"p","running":[],"__proto__":{"x":1}}'),
      [],
      null,
      "heartbeat",
    ];
    const outcomes = cases.map((c) => (c === null || typeof c !== "object" ? checkScalar(c) : check(c)));
    expect(outcomes.map((o) => o.fast)).toEqual(outcomes.map((o, i) => o.valid && !hasNul(cases[i])));
  });
});

/** The HTTP route's body: the frame without `type` and `id`, against HeartbeatBodySchema. */
function checkBody(input: Record<string, unknown>) {
  const { type: _type, id: _id, ...rest } = input;
  return check(rest, fastHeartbeatBody, HeartbeatBodySchema);
}

describe("fastHeartbeatBody", () => {
  it("accepts exactly the valid POST /heartbeat bodies without NUL, returning what the schema returns", () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(fc.oneof(frame, validish), (f) => {
        const r = checkBody(f as Record<string, unknown>);
        if (r.fast) accepted++;
        if (!r.valid) refused++;
      }),
      { numRuns: 5000 },
    );
    expect(accepted).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(500);
  });

  it("refuses what is not a body: frame fields, arrays, scalars", () => {
    expect(fastHeartbeatBody({ type: "heartbeat", id: "x", running: [] })).toBeNull();
    expect(HeartbeatBodySchema.safeParse({ type: "heartbeat", id: "x", running: [] }).success).toBe(false);
    for (const v of [[], null, "x", 1, {}]) expect(fastHeartbeatBody(v)).toBeNull();
    expect(fastHeartbeatBody({ running: [{ jobId: "j", lease: 3 }] })).toEqual({
      running: [{ jobId: "j", lease: 3 }],
    });
  });
});

function checkScalar(v: unknown) {
  expect(fastChannelHeartbeat(v)).toBeNull();
  return { fast: false, valid: ChannelHeartbeatSchema.safeParse(v).success };
}
