// Admission policies (PRODUCT.md §3): CEL expressions over `job`, `tenant` and `now`, compiled when they are
// written and evaluated on every submission. Pure; runs in workerd and Node. See policy-env.ts for the
// variables and policy-cost.ts for the cost limit.
//
// Decisions worth knowing when writing policies:
//   - A policy matches when its expression is true. A deny that matches rejects the submission; a warn
//     admits it and its message is stored on the job.
//   - Failing closed: an expression that errors at run time (a missing map key, an out-of-range index,
//     division by zero) counts as matched. A deny policy then denies, with a message saying it could not be
//     evaluated and why, like Kubernetes ValidatingAdmissionPolicy's default failurePolicy: Fail; a warn
//     policy warns. Guard optional data: `has(job.labels.team) && job.labels.team == "x"`, or
//     `"team" in job.labels && …`, or `size(job.command) > 0 && job.command[0] == "python"`.
//   - A null `gpuType`, `maxRuntimeSeconds` or `arraySize` reads as "" / 0 (policy-env.ts), so
//     `has(job.gpuType)` is always true; test `job.gpuType != ""` instead.
//   - The estimated cost is capped (policy-cost.ts); `matches` needs a literal, backtracking-safe pattern
//     (policy-regex.ts). `k.matches("^.{0,63}$")` is a far cheaper length check than `size(k) <= 63`,
//     which cel-js implements by counting code points in a JavaScript loop.
//   - `now` is a CEL timestamp: `now.getHours() < 8` (UTC), `now.getDayOfWeek("Europe/Berlin") == 0`,
//     `now < timestamp("2026-01-01T00:00:00Z")`, `now - timestamp("…") > duration("24h")`.
import type { ParseResult } from "@marcbachmann/cel-js";
import { CostIssue, estimateCost, POLICY_COST_BUDGET } from "./policy-cost.ts";
import {
  type CelJob,
  type CelTenant,
  policyEnvironment,
  toCelJob,
  toCelNow,
  toCelTenant,
} from "./policy-env.ts";
import {
  describeCelError,
  errorOffset,
  type PolicyPosition,
  positionAt,
  runtimeErrorText,
} from "./policy-errors.ts";

export { POLICY_COST_BUDGET } from "./policy-cost.ts";
export { CEL_LIMITS, INPUT_BOUNDS } from "./policy-env.ts";
export type { PolicyPosition } from "./policy-errors.ts";

/** Longest accepted expression or message expression, in UTF-16 code units. */
export const POLICY_EXPRESSION_MAX_LENGTH = 4096;
/** Longest message a decision carries; a message expression can build arbitrarily long text from env values. */
export const POLICY_MESSAGE_MAX_LENGTH = 1024;

export interface PolicyDef {
  id: string;
  version: number;
  name: string;
  expression: string;
  effect: "deny" | "warn";
  message: string | null;
  messageExpression: string | null;
  enabled: boolean;
  scope: "global" | "tenant";
}

export interface PolicyCompileError {
  field: "expression" | "messageExpression";
  /** Starts with "line L, column C: " when the position is known. */
  message: string;
  position: PolicyPosition | null;
}

type Context = { job: CelJob; tenant: CelTenant; now: Date };
type Program = (ctx: Context) => unknown;

export interface CompiledPolicy {
  readonly def: PolicyDef;
  /** Estimated cost of the expression plus the message expression, in policy-cost.ts units. */
  readonly estimatedCost: number;
  readonly program: Program;
  readonly messageProgram: Program | null;
}

export interface PolicyJobInput {
  name: string;
  user: string;
  gpus: number;
  gpuType: string | null;
  priority: "high" | "normal" | "low";
  command: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  maxRuntimeSeconds: number | null;
  maxRetries: number;
  arraySize?: number | null;
}

export interface PolicyTenantInput {
  id: string;
  name: string;
  weight: number;
}

export interface PolicyDecision {
  policyId: string;
  version: number;
  name: string;
  scope: "global" | "tenant";
  effect: "deny" | "warn";
  /** True when the expression was true, or when it failed to evaluate (fail closed). */
  matched: boolean;
  /** The policy's message when matched; null otherwise. */
  message: string | null;
  /** Why evaluation failed, when it did. */
  error?: string;
}

// ---------------------------------------------------------------------------------------------------
// Compilation

export function compilePolicy(
  def: PolicyDef,
): { ok: true; policy: CompiledPolicy } | { ok: false; errors: PolicyCompileError[] } {
  const errors: PolicyCompileError[] = [];
  const main = compileExpression("expression", def.expression, "bool", errors);
  const msg =
    def.messageExpression !== null && def.messageExpression.trim() !== ""
      ? compileExpression("messageExpression", def.messageExpression, "string", errors)
      : null;
  if (!main || errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    policy: {
      def,
      estimatedCost: main.cost + (msg?.cost ?? 0),
      program: main.program,
      messageProgram: msg?.program ?? null,
    },
  };
}

function compileExpression(
  field: PolicyCompileError["field"],
  source: string,
  want: "bool" | "string",
  errors: PolicyCompileError[],
): { program: Program; cost: number } | null {
  const fail = (message: string, offset: number | null) => {
    const position = offset === null ? null : positionAt(source, offset);
    const where = position ? `line ${position.line}, column ${position.column}: ` : "";
    errors.push({ field, message: where + message, position });
    return null;
  };

  if (source.length > POLICY_EXPRESSION_MAX_LENGTH) {
    return fail(
      `${field} is ${source.length} characters long; the limit is ${POLICY_EXPRESSION_MAX_LENGTH}`,
      null,
    );
  }

  let parsed: ParseResult;
  try {
    parsed = policyEnvironment().parse(source);
  } catch (e) {
    return fail(describeCelError(e), errorOffset(e));
  }
  // check() also records the checked types on the AST, which lets evaluation skip per-call type
  // checking (cel-js takes that fast path when the root node carries a checked type).
  const checked = parsed.check();
  if (!checked.valid) return fail(describeCelError(checked.error), errorOffset(checked.error));
  if (checked.type !== want) {
    const hint =
      want === "bool"
        ? "a policy matches when its expression is true; compare the value, e.g. job.gpus > 8"
        : "wrap it in string(...) or build the text with +";
    return fail(
      `${field} must evaluate to ${want}, but it evaluates to ${checked.type}; ${hint}`,
      parsed.ast.start,
    );
  }

  let estimate: ReturnType<typeof estimateCost>;
  try {
    estimate = estimateCost(parsed.ast);
  } catch (e) {
    if (e instanceof CostIssue) return fail(e.message, e.offset);
    throw e;
  }
  if (estimate.cost > POLICY_COST_BUDGET) {
    const h = estimate.hottest;
    const detail = h ? `; most of it is ${h.name}() running up to ${h.iterations} times` : "";
    return fail(
      `expression too expensive: estimated cost ${Math.round(estimate.cost)} exceeds budget ${POLICY_COST_BUDGET}${detail}`,
      h ? h.node.start : parsed.ast.start,
    );
  }
  return { program: parsed as unknown as Program, cost: estimate.cost };
}

// ---------------------------------------------------------------------------------------------------
// Evaluation

/**
 * Evaluates every enabled policy, in the order given, against one submission. Disabled policies are
 * skipped and absent from `decisions`. `allowed` is false when any deny policy matched (or failed).
 */
export function evaluatePolicies(
  policies: CompiledPolicy[],
  job: PolicyJobInput,
  tenant: PolicyTenantInput,
  now: Date,
): { allowed: boolean; decisions: PolicyDecision[] } {
  // Converted once per submission, not per policy: this is most of the fixed cost.
  const ctx: Context = { job: toCelJob(job), tenant: toCelTenant(tenant), now: toCelNow(now) };
  const decisions: PolicyDecision[] = [];
  let allowed = true;
  for (const p of policies) {
    const def = p.def;
    if (!def.enabled) continue;
    let matched: boolean;
    let message: string | null = null;
    let error: string | undefined;
    try {
      const r = p.program(ctx);
      // Type checking guarantees a bool; anything else (a Promise from an async function) is a bug we
      // treat like any evaluation failure rather than silently as "no match".
      if (typeof r !== "boolean") throw new Error(`expression returned ${typeof r}, not bool`);
      matched = r;
    } catch (e) {
      matched = true;
      error = runtimeErrorText(e);
    }
    if (error !== undefined) {
      message = `policy "${def.name}" could not be evaluated${def.effect === "deny" ? ", so it denies" : ""}: ${error}`;
    } else if (matched) {
      message = matchedMessage(p, ctx);
    }
    if (matched && def.effect === "deny") allowed = false;
    const d: PolicyDecision = {
      policyId: def.id,
      version: def.version,
      name: def.name,
      scope: def.scope,
      effect: def.effect,
      matched,
      message,
    };
    if (error !== undefined) d.error = error;
    decisions.push(d);
  }
  return { allowed, decisions };
}

function matchedMessage(p: CompiledPolicy, ctx: Context): string {
  if (p.messageProgram) {
    try {
      const m = p.messageProgram(ctx);
      if (typeof m === "string" && m !== "") {
        return m.length > POLICY_MESSAGE_MAX_LENGTH ? `${m.slice(0, POLICY_MESSAGE_MAX_LENGTH - 1)}…` : m;
      }
    } catch {
      // A broken message must not change the decision; fall back to the static text below.
    }
  }
  return p.def.message || `policy "${p.def.name}" matched`;
}
