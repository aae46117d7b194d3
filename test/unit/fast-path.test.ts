// withFastPath (functions/fast-path.ts) puts a hand check in front of a route schema's safeParseAsync, which
// is what the route's validator calls. The schema must answer exactly as before: the hand check's value when
// it has one, the schema's own result (and error wording) otherwise. Path ids take it on every id route.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { withFastPath } from "../../functions/fast-path.ts";
import { IdParam, JobSubmit } from "../../functions/schemas.ts";
import { fastJobSubmit } from "../../functions/submit-fast.ts";

describe("withFastPath", () => {
  it("answers like the schema, valid or not, and wrapping twice changes nothing", async () => {
    const good = { command: ["x"], name: "n", gpus: 1, labels: { team: "a" } };
    const bad = { name: "n", command: ["x"], gpus: 0, extra: 1 };
    const wrapped = withFastPath(JobSubmit, fastJobSubmit);
    expect(withFastPath(JobSubmit, fastJobSubmit)).toBe(wrapped);
    expect(await wrapped.safeParseAsync(good)).toEqual(JobSubmit.safeParse(good));
    const refused = await wrapped.safeParseAsync(bad);
    expect(refused.success).toBe(false);
    expect(refused.error?.issues.map((i) => i.code).sort()).toEqual(["too_small", "unrecognized_keys"]);
  });

  it("asks the hand check first and the schema only when it declines", async () => {
    const seen: string[] = [];
    const schema = withFastPath(z.object({ n: z.number() }), (raw) => {
      seen.push("fast");
      return (raw as { n?: unknown }).n === 1 ? { n: 1 } : null;
    });
    expect(await schema.safeParseAsync({ n: 1 })).toEqual({ success: true, data: { n: 1 } });
    expect((await schema.safeParseAsync({ n: 2 })).data).toEqual({ n: 2 }); // declined: the schema accepts it
    expect((await schema.safeParseAsync({ n: "x" })).success).toBe(false);
    expect(seen).toHaveLength(3);
    expect(schema.parse({ n: 3 })).toEqual({ n: 3 }); // the rest of the schema is untouched
  });
});

describe("IdParam", () => {
  it("gives what the schema gives for any params object", async () => {
    const param = IdParam("jobId", "job_x");
    const plain = z.object({ jobId: z.string().max(200) }); // the same check, no hand path
    const value = fc.oneof(
      fc.string({ maxLength: 210 }),
      fc.constantFrom("", "x".repeat(200), "x".repeat(201), 1, null, undefined, ["a"]),
    );
    const params = fc.oneof(
      fc.record({ jobId: value, other: fc.string() }, { requiredKeys: [] }),
      fc.constantFrom(null, [], "jobId", 5),
    );
    await fc.assert(
      fc.asyncProperty(params, async (p) => {
        const got = await param.safeParseAsync(p);
        const want = plain.safeParse(p);
        expect(got.success).toBe(want.success);
        if (want.success) expect(got.data).toEqual(want.data);
      }),
      { numRuns: 2000 },
    );
  });
});
