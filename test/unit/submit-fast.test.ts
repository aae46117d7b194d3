// POST /v1/jobs checks bodies by hand before it falls back to zod (functions/submit-fast.ts). The hand check
// must never accept what JobSubmit refuses, must return what JobSubmit returns, byte for byte once
// serialised (the Idempotency-Key fingerprint hashes that text), and should take every valid body but the
// odd one it leaves to the schema on purpose, or it saves nothing. The schema's own answer comes from
// safeParse: withFastPath changes only the instance's safeParseAsync.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { JobSubmit } from "../../functions/schemas.ts";
import { fastJobSubmit } from "../../functions/submit-fast.ts";

const text = (max: number) =>
  fc.oneof(
    fc.string({ maxLength: max }),
    fc.string({
      unit: fc.constantFrom("a", "Z", "0", "-", "_", ".", "\u0000", "\u001f", "\u007f", "é"),
      maxLength: max,
    }),
  );

/** Values near and beyond every limit, and of the wrong kinds. */
const integer = fc.oneof(
  fc.integer({ min: -3, max: 70 }),
  fc.constantFrom(0, -0, 1.5, 10_000, 10_001, 30 * 86400, 30 * 86400 + 1, Number.MAX_SAFE_INTEGER + 2, 1e300),
  fc.constantFrom("1", null, true),
);

const key = fc.oneof(
  fc.constantFrom(
    "A",
    "_x",
    "PATH",
    "GANTRY_X",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_VISIBLE_DEVICESX",
    "__proto__",
  ),
  fc.constantFrom("team", "a.b/c-d_e", ".bad", "constructor", "toString", "1", "0"),
  fc.string({ unit: fc.constantFrom("a", "B", "1", "_", ".", "/", "-", " "), minLength: 0, maxLength: 70 }),
);

const dict = (maxKeys: number, value: fc.Arbitrary<unknown>) =>
  fc.oneof(fc.dictionary(key, value, { maxKeys }), fc.constantFrom(null, [], "x"));

const dependency = fc.record(
  {
    job: fc.oneof(text(210), fc.constant(3)),
    condition: fc.constantFrom("succeeded", "finished", "failed", null),
    other: fc.constant(1),
  },
  { requiredKeys: [] },
);

const body = fc.record(
  {
    name: fc.oneof(text(130), fc.constant(1)),
    command: fc.oneof(fc.array(text(20), { maxLength: 4 }), fc.constant("ls"), fc.constant([1])),
    gpus: integer,
    gpuType: fc.oneof(text(34), fc.constantFrom("H100", "a100", "x.y-z_1", null)),
    priority: fc.constantFrom("high", "normal", "low", "urgent", null, 1),
    maxRuntimeSeconds: integer,
    maxRetries: integer,
    env: dict(4, fc.oneof(text(20), fc.constant(1))),
    labels: dict(4, fc.oneof(text(20), fc.constant(null))),
    user: fc.oneof(text(20), fc.constantFrom("alice", "svc-1@x.y", "-bad", "")),
    array: fc.oneof(
      fc.record({ size: integer }),
      fc.record({ size: integer, more: fc.constant(1) }),
      fc.constant(null),
    ),
    dependsOn: fc.oneof(fc.array(dependency, { maxLength: 3 }), fc.constant({})),
    unknown: fc.constant(true),
  },
  { requiredKeys: [] },
);

const okName = fc.string({ unit: fc.constantFrom("a", "b", "-", " ", "é"), minLength: 1, maxLength: 128 });
const okKey = fc.string({ unit: fc.constantFrom("A", "b", "_", "9"), minLength: 1, maxLength: 20 });

/** Mostly valid bodies: the schema's own shape with valid values, so the property sees many accepted ones. */
const validish = fc.record(
  {
    name: okName,
    command: fc.array(fc.string({ maxLength: 30 }), { minLength: 1, maxLength: 5 }),
    gpus: fc.integer({ min: 1, max: 64 }),
    gpuType: fc.constantFrom("H100", "A100", "rtx4090", "L4"),
    priority: fc.constantFrom("high", "normal", "low"),
    maxRuntimeSeconds: fc.integer({ min: 1, max: 30 * 86400 }),
    maxRetries: fc.integer({ min: 0, max: 10 }),
    env: fc.dictionary(
      okKey.map((k) => `E${k}`),
      fc.string({ maxLength: 20 }),
      { maxKeys: 5 },
    ),
    labels: fc.dictionary(
      okKey,
      okName.map((s) => s.slice(0, 256)),
      { maxKeys: 5 },
    ),
    user: fc.constantFrom("alice", "bob.smith@corp", "svc_1"),
    array: fc.record({ size: fc.integer({ min: 1, max: 10_000 }) }),
    dependsOn: fc.array(
      fc.record(
        { job: fc.string({ maxLength: 200 }), condition: fc.constantFrom("succeeded", "finished") },
        { requiredKeys: ["job"] },
      ),
      { maxLength: 3 },
    ),
  },
  { requiredKeys: ["name", "command", "gpus"] },
);

/** Valid bodies the hand check leaves to the schema on purpose. */
const leftToSchema = (raw: unknown) => /"__proto__"/.test(JSON.stringify(raw));

function check(input: unknown) {
  const text = JSON.stringify(input);
  const fast = fastJobSubmit(JSON.parse(text)); // what the route has: parsed JSON text
  const schema = JobSubmit.safeParse(JSON.parse(text));
  if (fast) {
    expect(schema.success).toBe(true);
    expect(JSON.stringify(fast)).toBe(JSON.stringify(schema.data));
    expect(fast).toEqual(schema.data);
  } else if (schema.success) {
    expect(leftToSchema(JSON.parse(text))).toBe(true);
  }
  return { fast: fast !== null, valid: schema.success };
}

describe("fastJobSubmit", () => {
  it("accepts exactly the valid bodies, returning what JobSubmit returns in the same key order", () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(fc.oneof(body, validish), (b) => {
        const r = check(b);
        if (r.fast) accepted++;
        if (!r.valid) refused++;
      }),
      { numRuns: 5000 },
    );
    // The property saw both sides: the fast path taken, and bodies the schema refuses.
    expect(accepted).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1000);
  });

  it("holds at the limits", () => {
    const base = { name: "n", command: ["x"], gpus: 1 };
    const cases: unknown[] = [
      base,
      { ...base, name: "x".repeat(128) },
      { ...base, name: "x".repeat(129) },
      { ...base, name: "" },
      { ...base, name: "tab\there" },
      { ...base, command: [] },
      { ...base, command: Array.from({ length: 256 }, () => "a") },
      { ...base, command: Array.from({ length: 257 }, () => "a") },
      { ...base, command: ["x".repeat(4096)] },
      { ...base, command: ["x".repeat(4097)] },
      { ...base, command: ["nul\u0000inside"] }, // valid for the schema; the route's hook refuses the NUL
      { ...base, gpus: 0 },
      { ...base, gpus: 64 },
      { ...base, gpus: 65 },
      { ...base, gpuType: "x".repeat(32) },
      { ...base, gpuType: "x".repeat(33) },
      { ...base, maxRuntimeSeconds: 30 * 86400 },
      { ...base, maxRetries: 10 },
      { ...base, maxRetries: 11 },
      { ...base, env: Object.fromEntries(Array.from({ length: 128 }, (_, i) => [`V${i}`, "v"])) },
      { ...base, env: Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`V${i}`, "v"])) },
      { ...base, env: { V: "x".repeat(4096) } },
      { ...base, env: { V: "x".repeat(4097) } },
      { ...base, env: { ["x".repeat(128)]: "v" } },
      { ...base, env: { ["x".repeat(129)]: "v" } },
      { ...base, labels: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`l${i}`, "v"])) },
      { ...base, labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`l${i}`, "v"])) },
      { ...base, labels: { l: "x".repeat(256) } },
      { ...base, labels: { l: "x".repeat(257) } },
      { ...base, labels: { ["k".repeat(63)]: "v" } },
      { ...base, labels: { ["k".repeat(64)]: "v" } },
      { ...base, user: "u".repeat(128) },
      { ...base, user: "u".repeat(129) },
      { ...base, array: { size: 10_000 } },
      { ...base, array: { size: 10_001 } },
      { ...base, dependsOn: Array.from({ length: 100 }, () => ({ job: "j" })) },
      { ...base, dependsOn: Array.from({ length: 101 }, () => ({ job: "j" })) },
      { ...base, dependsOn: [{ condition: "finished", job: "j" }] },
      { gpus: 2, labels: { b: "1", a: "2" }, command: ["c"], priority: "low", name: "order" },
    ];
    const seen = cases.map((c) => check(c));
    for (const s of seen) expect(s.fast).toBe(s.valid); // no __proto__ here: every valid one is taken
    expect(seen.filter((s) => s.valid)).toHaveLength(20);
  });

  it("leaves a __proto__ key to the schema (a copy would set its prototype; zod drops the key)", () => {
    const raw = JSON.parse('{"name":"n","command":["x"],"gpus":1,"env":{"__proto__":"x","A":"1"}}');
    expect(fastJobSubmit(raw)).toBeNull();
    expect(fastJobSubmit(JSON.parse('{"__proto__":{},"name":"n","command":["x"],"gpus":1}'))).toBeNull();
  });
});
