// The admission policy engine (PRODUCT.md §3 "Policies"): CEL over job, tenant and now; compile-time
// errors with positions; the cost limit (including regex backtracking); deny/warn; messages; fail-closed.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { REALISTIC_POLICIES } from "../../bench/policy.ts";
import {
  type CompiledPolicy,
  compilePolicy,
  evaluatePolicies,
  POLICY_COST_BUDGET,
  POLICY_EXPRESSION_MAX_LENGTH,
  type PolicyDef,
  type PolicyJobInput,
  type PolicyTenantInput,
} from "../../src/domain/policy.ts";
import { toCelNow } from "../../src/domain/policy-env.ts";
import { regexWork } from "../../src/domain/policy-regex.ts";

const baseDef: PolicyDef = {
  id: "pol_1",
  version: 1,
  name: "p",
  expression: "true",
  effect: "deny",
  message: null,
  messageExpression: null,
  enabled: true,
  scope: "tenant",
};

const JOB: PolicyJobInput = {
  name: "train-resnet",
  user: "alice",
  gpus: 2,
  gpuType: null,
  priority: "normal",
  command: ["python", "train.py"],
  env: { WANDB_PROJECT: "resnet" },
  labels: { team: "vision" },
  maxRuntimeSeconds: null,
  maxRetries: 2,
};
const TENANT: PolicyTenantInput = { id: "acme", name: "Acme Corp", weight: 1 };
const NOON = new Date("2026-03-04T12:00:00Z"); // a Wednesday

let seq = 0;
function def(over: Partial<PolicyDef>): PolicyDef {
  seq++;
  return { ...baseDef, id: `pol_${seq}`, name: `p${seq}`, ...over };
}

function compile(over: Partial<PolicyDef>): CompiledPolicy {
  const r = compilePolicy(def(over));
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join("; "));
  return r.policy;
}

function compileErrors(over: Partial<PolicyDef>) {
  const r = compilePolicy(def(over));
  if (r.ok) throw new Error(`expected ${over.expression ?? over.messageExpression} to be refused`);
  return r.errors;
}

/** Whether `expression` matches the job (deny policy; throws if it errored). */
function matches(
  expression: string,
  job: Partial<PolicyJobInput> = {},
  now = NOON,
  tenant = TENANT,
): boolean {
  const { decisions } = evaluatePolicies([compile({ expression })], { ...JOB, ...job }, tenant, now);
  const d = decisions[0]!;
  if (d.error) throw new Error(d.error);
  return d.matched;
}

describe("deny and warn", () => {
  it("denies 9 GPUs and admits 8 with `job.gpus > 8`, carrying the policy's message", () => {
    const p = compile({ name: "max-gpus", expression: "job.gpus > 8", message: "at most 8 GPUs per job" });
    const nine = evaluatePolicies([p], { ...JOB, gpus: 9 }, TENANT, NOON);
    expect(nine).toEqual({
      allowed: false,
      decisions: [
        {
          policyId: p.def.id,
          version: 1,
          name: "max-gpus",
          scope: "tenant",
          effect: "deny",
          matched: true,
          message: "at most 8 GPUs per job",
        },
      ],
    });
    const eight = evaluatePolicies([p], { ...JOB, gpus: 8 }, TENANT, NOON);
    expect(eight.allowed).toBe(true);
    expect(eight.decisions[0]).toMatchObject({ matched: false, message: null });
    expect(eight.decisions[0]).not.toHaveProperty("error");
  });

  it("a matching warn policy admits and returns the warning", () => {
    const p = compile({ effect: "warn", expression: '!("team" in job.labels)', message: "add a team label" });
    const r = evaluatePolicies([p], { ...JOB, labels: {} }, TENANT, NOON);
    expect(r.allowed).toBe(true);
    expect(r.decisions).toEqual([
      expect.objectContaining({ effect: "warn", matched: true, message: "add a team label" }),
    ]);
  });

  it("returns every decision in order, and every denying message, when several policies match", () => {
    const ps = [
      compile({
        name: "a",
        expression: "job.gpus > 1",
        message: "too many GPUs",
        scope: "global",
        version: 3,
      }),
      compile({ name: "b", expression: "job.gpus > 100" }),
      compile({ name: "c", effect: "warn", expression: "true", message: "heads up" }),
      compile({ name: "d", expression: 'job.user == "alice"', message: "alice is on holiday" }),
    ];
    const r = evaluatePolicies(ps, JOB, TENANT, NOON);
    expect(r.allowed).toBe(false);
    expect(r.decisions.map((d) => [d.name, d.version, d.scope, d.matched])).toEqual([
      ["a", 3, "global", true],
      ["b", 1, "tenant", false],
      ["c", 1, "tenant", true],
      ["d", 1, "tenant", true],
    ]);
    const denying = r.decisions.filter((d) => d.effect === "deny" && d.matched).map((d) => d.message);
    expect(denying).toEqual(["too many GPUs", "alice is on holiday"]);
  });

  it("skips disabled policies entirely", () => {
    const off = compile({ expression: "true", enabled: false });
    const on = compile({ effect: "warn", expression: "true" });
    const r = evaluatePolicies([off, on], JOB, TENANT, NOON);
    expect(r.allowed).toBe(true);
    expect(r.decisions.map((d) => d.policyId)).toEqual([on.def.id]);
  });

  it("admits with no decisions when there are no policies", () => {
    expect(evaluatePolicies([], JOB, TENANT, NOON)).toEqual({ allowed: true, decisions: [] });
  });
});

describe("messages", () => {
  it("defaults to a message naming the policy", () => {
    const r = evaluatePolicies([compile({ name: "no-h100", expression: "true" })], JOB, TENANT, NOON);
    expect(r.decisions[0]!.message).toBe('policy "no-h100" matched');
  });

  it("evaluates messageExpression over the same variables", () => {
    const p = compile({
      expression: "job.gpus > 1",
      messageExpression:
        '"job " + job.name + " asks for " + string(job.gpus) + " GPUs; " + tenant.id + " may use 1"',
      message: "static",
    });
    const r = evaluatePolicies([p], JOB, TENANT, NOON);
    expect(r.decisions[0]!.message).toBe("job train-resnet asks for 2 GPUs; acme may use 1");
  });

  it("falls back to the static message, then the default, when messageExpression fails at run time", () => {
    const withStatic = compile({
      expression: "true",
      messageExpression: "job.labels.owner",
      message: "static",
    });
    const withoutStatic = compile({ name: "x", expression: "true", messageExpression: "job.labels.owner" });
    const r = evaluatePolicies([withStatic, withoutStatic], JOB, TENANT, NOON);
    expect(r.decisions.map((d) => d.message)).toEqual(["static", 'policy "x" matched']);
    expect(r.decisions.every((d) => d.error === undefined)).toBe(true);
  });

  it("does not evaluate the message of a policy that did not match", () => {
    const p = compile({ expression: "false", messageExpression: '"never " + job.labels.missing' });
    expect(evaluatePolicies([p], JOB, TENANT, NOON).decisions[0]).toMatchObject({
      matched: false,
      message: null,
    });
  });

  it("refuses a messageExpression that is not a string, naming the field", () => {
    const errors = compileErrors({ expression: "true", messageExpression: "job.gpus" });
    expect(errors).toEqual([
      {
        field: "messageExpression",
        message: expect.stringMatching(
          /^line 1, column 1: messageExpression must evaluate to string, but it evaluates to int/,
        ),
        position: { line: 1, column: 1, offset: 0 },
      },
    ]);
  });

  it("truncates very long message expressions", () => {
    const p = compile({ expression: "true", messageExpression: "job.name" });
    const r = evaluatePolicies([p], { ...JOB, name: "n".repeat(3000) }, TENANT, NOON);
    expect(r.decisions[0]!.message).toHaveLength(1024);
  });
});

describe("compile errors", () => {
  it("reports a syntax error at its line and column", () => {
    expect(compileErrors({ expression: "job.gpus >" })).toEqual([
      {
        field: "expression",
        message: "line 1, column 11: unexpected end of input",
        position: { line: 1, column: 11, offset: 10 },
      },
    ]);
    expect(compileErrors({ expression: "(job.gpus > 1" })[0]!.message).toBe(
      "line 1, column 14: expected ')' but found end of input",
    );
  });

  it("counts lines and columns on multi-line expressions, columns in characters", () => {
    const [e] = compileErrors({ expression: 'job.name == "é" &&\n  job.nmae == "x"' });
    expect(e!.position).toEqual({ line: 2, column: 7, offset: 25 });
    expect(e!.message).toMatch(/^line 2, column 7: job has no field "nmae" \(fields: name, user, gpus,/);
    const [u] = compileErrors({ expression: '"é" == "x" && jbo.gpus > 1' });
    expect(u!.position).toEqual({ line: 1, column: 15, offset: 14 });
  });

  it("refuses unknown variables and says which exist", () => {
    const [e] = compileErrors({ expression: "job.gpus > 1 && user == 'bob'" });
    expect(e!.message).toBe("line 1, column 17: unknown variable: user (policies can use job, tenant, now)");
  });

  it("refuses expressions that do not evaluate to bool", () => {
    const [e] = compileErrors({ expression: "job.gpus + 1" });
    expect(e!.message).toMatch(
      /^line 1, column 1: expression must evaluate to bool, but it evaluates to int/,
    );
    expect(compileErrors({ expression: "job.name" })[0]!.message).toContain("evaluates to string");
  });

  it("refuses type errors such as comparing a string to an int", () => {
    const [e] = compileErrors({ expression: 'job.gpus == "8"' });
    expect(e!.field).toBe("expression");
    expect(e!.position).not.toBeNull();
  });

  it("reports errors in both expressions at once", () => {
    const errors = compileErrors({ expression: "job.gpus >", messageExpression: '"x" +' });
    expect(errors.map((e) => e.field)).toEqual(["expression", "messageExpression"]);
  });

  it("enforces structural limits: length, nesting depth and node count", () => {
    const long = compileErrors({ expression: `job.name == "${"x".repeat(POLICY_EXPRESSION_MAX_LENGTH)}"` });
    expect(long[0]).toMatchObject({ position: null, message: expect.stringContaining("the limit is 4096") });
    const deep = compileErrors({ expression: `${"(".repeat(80)}true${")".repeat(80)}` });
    expect(deep[0]!.message).toMatch(
      /^line 1, column \d+: expression nested too deeply: more than 64 levels/,
    );
    const wide = compileErrors({ expression: `${"1 +".repeat(600)} 1 > 0` });
    expect(wide[0]!.message).toMatch(/^line 1, column \d+: expression too large: more than 1000 nodes/);
  });
});

describe("evaluation cost limit", () => {
  it("accepts realistic scans of command, env and labels", () => {
    for (const expression of [
      'job.command.exists(c, c.contains("rm -rf"))',
      'job.env.exists(k, k.startsWith("AWS_") || job.env[k].contains("password"))',
      "job.labels.all(k, size(k) <= 63)",
      '"--privileged" in job.command',
    ]) {
      expect(compile({ expression }).estimatedCost).toBeLessThan(POLICY_COST_BUDGET);
    }
  });

  it("refuses nested loops whose worst case exceeds the budget, pointing at the loop", () => {
    const [e] = compileErrors({
      expression: "job.gpus > 0 && job.command.exists(a, job.command.exists(b, a == b + b))",
    });
    expect(e!.message).toMatch(
      /^line 1, column 17: expression too expensive: estimated cost \d+ exceeds budget 50000; most of it is exists\(\) running up to 256 times$/,
    );
    expect(e!.position).toEqual({ line: 1, column: 17, offset: 16 });
  });

  it("sizes loops by the gateway limits: 64 labels nest where 256 command items do not", () => {
    expect(() =>
      compile({ expression: "job.labels.all(a, job.labels.all(b, a == b || a != b))" }),
    ).not.toThrow();
    expect(
      compileErrors({ expression: "job.command.all(a, job.command.all(b, a == b || a != b))" }),
    ).toHaveLength(1);
  });

  it("charges expensive functions: repeated split() of unbounded strings is refused", () => {
    const [e] = compileErrors({ expression: 'job.command.exists(c, size(c.split("-")) > 100)' });
    expect(e!.message).toMatch(/expression too expensive/);
  });

  it("applies the budget to message expressions too", () => {
    const [e] = compileErrors({
      expression: "true",
      messageExpression: 'job.command.map(a, job.command.filter(b, b == a).join(",")).join(";")',
    });
    expect(e).toMatchObject({ field: "messageExpression", message: expect.stringMatching(/too expensive/) });
  });
});

describe("regular expressions", () => {
  it("matches with a safe literal pattern", () => {
    expect(matches('job.name.matches("^[a-z]+-[a-z0-9]+$")')).toBe(true);
    expect(matches('job.name.matches("^[a-z]+-[0-9]+$")')).toBe(false);
  });

  it("refuses patterns that can backtrack catastrophically, at the pattern's position", () => {
    const [e] = compileErrors({ expression: 'job.name.matches("(a+)+$")' });
    expect(e!.message).toMatch(/^line 1, column 18: regular expression repeats a group/);
    expect(compileErrors({ expression: 'job.name.matches("(x|xy)*z")' })[0]!.message).toMatch(
      /repeats a group/,
    );
    expect(compileErrors({ expression: 'job.name.matches(".*.*x")' })[0]!.message).toMatch(/can backtrack/);
    expect(compileErrors({ expression: 'job.name.matches("(a)\\\\1")' })[0]!.message).toMatch(
      /backreferences/,
    );
    expect(compileErrors({ expression: 'job.name.matches("(?=a)b")' })[0]!.message).toMatch(/lookahead/);
  });

  it("refuses invalid and non-literal patterns when the policy is written", () => {
    expect(compileErrors({ expression: 'job.name.matches("[")' })[0]!.message).toMatch(
      /invalid regular expression/,
    );
    expect(compileErrors({ expression: "job.name.matches(job.user)" })[0]!.message).toMatch(
      /needs a string literal pattern/,
    );
  });

  it("accepted patterns finish quickly on adversarial 4 KiB inputs", () => {
    const accepted = [
      "^[a-z]+-[0-9]+$",
      "^[\\w.-]+@[\\w-]+\\.[a-z]{2,}$",
      "^[^/]+/[^/]+$",
      "^(?<team>[a-z]+):[0-9]+$",
      "^[a-z]*[0-9]+$",
      "^.*prod$",
      "foo-[0-9]+",
      "^(foo|bar)-[a-z]+$",
    ];
    const inputs = ["a", "a-", "1", "a@", "a.", "/", "ab"].map((s) =>
      s.repeat(Math.ceil(4096 / s.length)).slice(0, 4095),
    );
    for (const p of accepted) {
      expect(regexWork(p)).toBeLessThan(POLICY_COST_BUDGET * 32);
      const re = new RegExp(p);
      const t0 = performance.now();
      for (const s of inputs) re.test(`${s}!`);
      expect(performance.now() - t0).toBeLessThan(50);
    }
  });
});

describe("run-time errors fail closed", () => {
  it("a deny policy that cannot be evaluated denies, saying why", () => {
    const p = compile({ name: "team-check", expression: 'job.labels.owner == "ml"', message: "wrong owner" });
    const r = evaluatePolicies([p], JOB, TENANT, NOON);
    expect(r.allowed).toBe(false);
    const d = r.decisions[0]!;
    expect(d.matched).toBe(true);
    expect(d.error).toMatch(/^no such key: owner \(guard optional fields with has\(\)/);
    expect(d.message).toBe(`policy "team-check" could not be evaluated, so it denies: ${d.error}`);
  });

  it("a warn policy that cannot be evaluated warns and admits", () => {
    const p = compile({ effect: "warn", expression: 'job.command[5] == "x"' });
    const r = evaluatePolicies([p], JOB, TENANT, NOON);
    expect(r.allowed).toBe(true);
    expect(r.decisions[0]).toMatchObject({
      matched: true,
      error: expect.stringMatching(/index out of bounds/),
    });
    expect(r.decisions[0]!.message).toMatch(/could not be evaluated: /);
  });

  it("guards with has() or `in` avoid the error", () => {
    expect(matches('has(job.labels.owner) && job.labels.owner == "ml"')).toBe(false);
    expect(matches('"owner" in job.labels && job.labels.owner == "ml"')).toBe(false);
    expect(matches('size(job.command) > 5 && job.command[5] == "x"')).toBe(false);
  });

  it("division by zero and bad conversions are evaluation errors too", () => {
    expect(() => matches("10 / (job.gpus - 2) > 1")).toThrow(/division by zero/);
    expect(() => matches("int(job.labels.team) > 1")).toThrow(/int/);
  });

  it("a failing policy does not affect the others", () => {
    const bad = compile({ effect: "warn", expression: "job.labels.nope == 'x'" });
    const good = compile({ expression: "job.gpus > 1", message: "too many" });
    const r = evaluatePolicies([bad, good], JOB, TENANT, NOON);
    expect(r.decisions.map((d) => [d.matched, d.error === undefined])).toEqual([
      [true, false],
      [true, true],
    ]);
    expect(r.decisions[1]!.message).toBe("too many");
  });
});

describe("variables", () => {
  it("exposes job fields with CEL types", () => {
    expect(matches('job.command[0] == "python"')).toBe(true);
    expect(matches('"team" in job.labels && job.labels.team == "vision"')).toBe(true);
    expect(matches('"x" in job.labels')).toBe(false);
    expect(matches('job.env.WANDB_PROJECT == "resnet" && "WANDB_PROJECT" in job.env')).toBe(true);
    expect(matches('job.user == "alice" && job.name.startsWith("train-")')).toBe(true);
    expect(matches('job.priority == "normal"')).toBe(true);
    expect(matches("job.gpus == 2 && job.maxRetries == 2")).toBe(true);
    expect(matches("size(job.command) == 2 && size(job.labels) == 1")).toBe(true);
  });

  it('exposes absent values as zero values: gpuType "", maxRuntimeSeconds 0, arraySize 0', () => {
    expect(matches('job.gpuType == "H100"')).toBe(false);
    expect(matches('job.gpuType == ""')).toBe(true);
    expect(matches('job.gpuType == "H100"', { gpuType: "H100" })).toBe(true);
    expect(matches("job.maxRuntimeSeconds == 0")).toBe(true);
    expect(matches("job.maxRuntimeSeconds > 3600", { maxRuntimeSeconds: 7200 })).toBe(true);
    expect(matches("job.arraySize == 0")).toBe(true);
    expect(matches("job.arraySize > 1000", { arraySize: 5000 })).toBe(true);
  });

  it("exposes the tenant", () => {
    expect(matches('tenant.id == "acme" && tenant.name == "Acme Corp"')).toBe(true);
    expect(matches('tenant.id == "other"')).toBe(false);
    expect(matches("tenant.weight >= 2.0", {}, NOON, { ...TENANT, weight: 2.5 })).toBe(true);
  });

  it("exposes now as a timestamp: hours, weekdays, comparisons and durations", () => {
    const night = new Date("2026-03-04T23:30:00Z");
    const offHours = "now.getHours() >= 22 || now.getHours() < 6";
    expect(matches(offHours, {}, night)).toBe(true);
    expect(matches(offHours, {}, NOON)).toBe(false);
    expect(matches("now.getDayOfWeek() == 3")).toBe(true); // Wednesday, 0 = Sunday
    expect(matches('now < timestamp("2026-06-01T00:00:00Z")')).toBe(true);
    expect(matches('now - timestamp("2026-03-04T00:00:00Z") > duration("11h")')).toBe(true);
    // 23:30 UTC is already Thursday 00:30 in Berlin.
    expect(
      matches('now.getDayOfWeek("Europe/Berlin") == 4 && now.getHours("Europe/Berlin") == 0', {}, night),
    ).toBe(true);
  });

  it("refuses an unknown time zone literal when the policy is written", () => {
    expect(compileErrors({ expression: 'now.getHours("Mars/Olympus") > 1' })[0]!.message).toMatch(
      /^line 1, column 14: unknown time zone "Mars\/Olympus"/,
    );
  });

  it("formats time zones exactly like Date#toLocaleString, which cel-js parses", () => {
    const zones = [
      "UTC",
      "Europe/Berlin",
      "America/New_York",
      "Asia/Kolkata",
      "Australia/Lord_Howe", // a 30-minute daylight-saving shift
      "Asia/Kathmandu", // +05:45
      "America/St_Johns", // -03:30 with daylight saving
      "Pacific/Chatham", // +12:45 / +13:45
    ];
    const wrong: string[] = [];
    const same = (t: number) => {
      const d = new Date(t);
      for (const timeZone of zones) {
        const got = toCelNow(d).toLocaleString("en-US", { timeZone });
        const want = d.toLocaleString("en-US", { timeZone });
        if (got !== want) wrong.push(`${d.toISOString()} ${timeZone}: ${got} != ${want}`);
      }
    };
    const WEEKISH = 86_400_000 * 7 + 3_600_000 * 5 + 61_000;
    for (let t = Date.UTC(2026, 0, 1); t < Date.UTC(2027, 0, 1); t += WEEKISH) same(t);
    // Offsets are cached per quarter hour: the two days around each 2026 transition of these zones, every
    // 7 min 7 s (each quarter hour is hit about twice), plus midnight, noon and the last millisecond.
    for (const day of [
      Date.UTC(2026, 2, 8), // New York, St John's
      Date.UTC(2026, 2, 29), // Berlin
      Date.UTC(2026, 3, 5), // Lord Howe, Chatham
      Date.UTC(2026, 8, 27), // Chatham
      Date.UTC(2026, 9, 4), // Lord Howe
      Date.UTC(2026, 9, 25), // Berlin
      Date.UTC(2026, 10, 1), // New York, St John's
    ]) {
      for (let t = day - 86_400_000; t < day + 86_400_000; t += 7 * 60_000 + 7_000) same(t);
    }
    same(Date.UTC(2026, 5, 1, 0, 0, 0));
    same(Date.UTC(2026, 5, 1, 12, 0, 0));
    same(Date.UTC(2026, 5, 1, 23, 59, 59, 999));
    expect(wrong).toEqual([]);
  });

  it("does not leak one submission's values into the next evaluation of the same compiled policies", () => {
    const ps = [
      compile({ expression: "job.command.exists(c, c == job.user)" }),
      compile({ expression: "job.gpus > 4" }),
    ];
    for (let i = 0; i < 3; i++) {
      expect(evaluatePolicies(ps, { ...JOB, command: ["bob"], user: "bob" }, TENANT, NOON).allowed).toBe(
        false,
      );
      expect(evaluatePolicies(ps, JOB, TENANT, NOON).allowed).toBe(true);
      expect(evaluatePolicies(ps, { ...JOB, gpus: 8 }, TENANT, NOON).allowed).toBe(false);
    }
  });
});

describe("benchmark policies", () => {
  it("all compile and evaluate without run-time errors", () => {
    const ps = REALISTIC_POLICIES.map((s) => compile(s));
    expect(ps).toHaveLength(20);
    const r = evaluatePolicies(
      ps,
      { ...JOB, command: ["python", "train.py"], labels: { team: "vision" } },
      TENANT,
      NOON,
    );
    expect(r.decisions.filter((d) => d.error)).toEqual([]);
  });
});

describe("invariants", () => {
  it("never throws, and allowed is exactly 'no deny decision matched', for arbitrary submissions", () => {
    const ps = REALISTIC_POLICIES.map((s) => compile(s));
    ps.push(
      compile({ expression: 'job.labels.team == "vision"' }),
      compile({ expression: "job.command[1] == 'x'" }),
    );
    const str = fc.string({ maxLength: 12 });
    const job = fc.record({
      name: str,
      user: str,
      gpus: fc.integer({ min: 1, max: 64 }),
      gpuType: fc.option(fc.constantFrom("H100", "a100", "L4", ""), { nil: null }),
      priority: fc.constantFrom("high" as const, "normal" as const, "low" as const),
      command: fc.array(str, { maxLength: 4 }),
      env: fc.dictionary(str, str, { maxKeys: 3 }),
      labels: fc.dictionary(fc.constantFrom("team", "costCenter", "x", "__proto__"), str, { maxKeys: 3 }),
      maxRuntimeSeconds: fc.option(fc.integer({ min: 1, max: 10 ** 6 }), { nil: null }),
      maxRetries: fc.integer({ min: 0, max: 10 }),
      arraySize: fc.option(fc.integer({ min: 1, max: 10_000 }), { nil: null }),
    });
    const when = fc.date({
      min: new Date("2000-01-01T00:00:00Z"),
      max: new Date("2100-01-01T00:00:00Z"),
      noInvalidDate: true,
    });
    fc.assert(
      fc.property(job, when, (j, now) => {
        const r = evaluatePolicies(ps, j, TENANT, now);
        expect(r.decisions).toHaveLength(ps.length);
        expect(r.allowed).toBe(!r.decisions.some((d) => d.effect === "deny" && d.matched));
        for (const d of r.decisions)
          expect(d.matched ? typeof d.message : d.message).toBe(d.matched ? "string" : null);
      }),
      { numRuns: 300 },
    );
  });
});
