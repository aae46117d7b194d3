// Static cost estimate for policy expressions. cel-js has no run-time cost tracking, so the only way to
// bound what a policy can cost every submission is to refuse expensive ones when they are written,
// from the AST and the gateway's input limits (the approach of Kubernetes' CEL cost estimator).
//
// One unit is roughly one interpreted AST node: ~30 ns in Node 20 on the 2-core bench machine (a nested
// loop over 64×64 labels estimated at 57,600 units took 1.8 ms). The model:
//   - every node costs 1;
//   - a comprehension (all, exists, exists_one, map, filter) costs its receiver plus
//     maxSize(receiver) × (1 + cost of its predicate/transform), so nesting multiplies; maxSize is the
//     gateway bound for job.command (256), job.env (128) and job.labels (64), the length of a literal,
//     and 4096 (a 4 KiB string split into characters) for anything the estimator cannot see through;
//   - functions over a string add what they cost on a 4 KiB string, measured: a scan or copy
//     (contains, startsWith, lowerAscii, substring, …) 16, size() 700 (cel-js counts code points in JS,
//     ~20 µs), split() 1400 (allocates up to 4097 strings, ~40 µs), join() one per element;
//   - `x in list`, list `+` and list/map equality add the sizes of the lists involved;
//   - a time-zone getter adds 64 on `now` (cached formatter, see policy-env.ts) and 2100 on any other
//     timestamp (cel-js builds an Intl formatter per call, ~60 µs);
//   - `matches` adds its worst-case regex steps / 32 (~1 ns a step; see policy-regex.ts).
// The budget, 50,000 units ≈ 1.5 ms worst case per policy, is far above realistic policies (scanning
// every command argument with `contains` is ~5,000) and keeps 20 policies at their worst around the
// time of one database round trip.
import type { ASTNode } from "@marcbachmann/cel-js";
import { assertTimeZone, INPUT_BOUNDS } from "./policy-env.ts";
import { regexWork } from "./policy-regex.ts";

export const POLICY_COST_BUDGET = 50_000;

const STRING_SCAN_COST = 16;
const STRING_SIZE_COST = 700;
const SPLIT_COST = 1400;
const TZ_NOW_COST = 64;
const TZ_OTHER_COST = 2100;
const REGEX_STEPS_PER_UNIT = 32;
/** Anything the estimator cannot size is assumed as large as a 4 KiB string split into characters. */
const DEFAULT_BOUND = INPUT_BOUNDS.stringBytes;
/** Keeps products of huge bounds finite; far above any budget. */
const COST_CAP = 1e15;

const JOB_COLLECTION_BOUNDS: Record<string, number> = {
  command: INPUT_BOUNDS.commandItems,
  env: INPUT_BOUNDS.envEntries,
  labels: INPUT_BOUNDS.labelEntries,
};

const COMPREHENSIONS = new Set(["all", "exists", "exists_one", "map", "filter"]);
const STRING_SCANS = new Set([
  "contains",
  "startsWith",
  "endsWith",
  "indexOf",
  "lastIndexOf",
  "substring",
  "lowerAscii",
  "upperAscii",
  "trim",
  "timestamp",
  "duration",
]);
const TZ_GETTERS = new Set([
  "getDate",
  "getDayOfMonth",
  "getDayOfWeek",
  "getDayOfYear",
  "getFullYear",
  "getHours",
  "getMilliseconds",
  "getMinutes",
  "getMonth",
  "getSeconds",
]);

/** A problem found while estimating, anchored at a source offset when there is one. */
export class CostIssue extends Error {
  constructor(
    message: string,
    readonly offset: number | null,
  ) {
    super(message);
  }
}

export interface CostEstimate {
  cost: number;
  /** The comprehension contributing most, for pointing the user at it. */
  hottest: { node: ASTNode; name: string; iterations: number; cost: number } | null;
}

// cel-js annotates each node with its checked type after check(); the public typings omit it.
type Checked = { checkedType?: { kind: string; name: string } };
const typeOf = (n: ASTNode) => (n as ASTNode & Checked).checkedType;
const isStringNode = (n: ASTNode) => typeOf(n)?.name === "string";
/** Unknown (unchecked or dyn) counts as an aggregate: over-estimating is the safe side. */
function isAggregate(n: ASTNode): boolean {
  const t = typeOf(n);
  return !t || t.kind === "list" || t.kind === "map" || t.kind === "dyn";
}

const add = (...xs: number[]) =>
  Math.min(
    COST_CAP,
    xs.reduce((a, b) => a + b, 0),
  );
const mul = (a: number, b: number) => Math.min(COST_CAP, a * b);

/** Estimates a type-checked expression; throws CostIssue for constructs refused outright. */
export function estimateCost(root: ASTNode): CostEstimate {
  const est: CostEstimate = { cost: 0, hottest: null };
  est.cost = cost(root, est);
  return est;
}

function cost(n: ASTNode, est: CostEstimate): number {
  switch (n.op) {
    case "value":
    case "id":
      return 1;
    case ".":
    case ".?":
      return add(1, cost(n.args[0], est));
    case "!_":
    case "-_":
      return add(1, cost(n.args, est));
    case "list":
      return add(1, ...n.args.map((a) => cost(a, est)));
    case "map":
      return add(1, ...n.args.map(([k, v]) => add(cost(k, est), cost(v, est))));
    case "?:":
      return add(1, ...n.args.map((a) => cost(a, est)));
    case "call": {
      const [name, args] = n.args;
      return add(1, ...args.map((a) => cost(a, est)), callExtra(name, args[0] ?? null, args, n));
    }
    case "rcall": {
      const [name, recv, args] = n.args;
      if (COMPREHENSIONS.has(name)) {
        // args[0] is the iteration variable; the rest run once per element.
        const body = add(1, ...args.slice(1).map((a) => cost(a, est)));
        const iterations = bound(recv);
        const loop = mul(iterations, body);
        if (!est.hottest || loop > est.hottest.cost) est.hottest = { node: n, name, iterations, cost: loop };
        return add(1, cost(recv, est), loop);
      }
      return add(1, cost(recv, est), ...args.map((a) => cost(a, est)), callExtra(name, recv, args, n));
    }
    default: {
      // "[]", "[?]", "||", "&&" and the binary operators: two operands.
      const [l, r] = n.args;
      let c = add(1, cost(l, est), cost(r, est));
      if (n.op === "in" && isAggregate(r)) c = add(c, bound(r));
      if ((n.op === "==" || n.op === "!=" || n.op === "+") && (isAggregate(l) || isAggregate(r))) {
        c = add(c, bound(l), bound(r));
      }
      return c;
    }
  }
}

/** Upper bound on the number of elements a list- or map-valued expression can have. */
function bound(n: ASTNode): number {
  switch (n.op) {
    case ".": {
      const [obj, field] = n.args;
      if (obj.op === "id" && obj.args === "job") return JOB_COLLECTION_BOUNDS[field] ?? DEFAULT_BOUND;
      return DEFAULT_BOUND;
    }
    case "list":
    case "map":
      return n.args.length;
    case "rcall": {
      const [name, recv] = n.args;
      if (name === "map" || name === "filter") return bound(recv);
      if (name === "split") return INPUT_BOUNDS.stringBytes + 1;
      return DEFAULT_BOUND;
    }
    case "call": {
      const [name, args] = n.args;
      return name === "dyn" && args[0] ? bound(args[0]) : DEFAULT_BOUND;
    }
    case "?:":
      return Math.max(bound(n.args[1]), bound(n.args[2]));
    case "+":
      return add(bound(n.args[0]), bound(n.args[1]));
    default:
      return DEFAULT_BOUND;
  }
}

function stringLiteral(n: ASTNode | undefined): string | null {
  return n?.op === "value" && typeof n.args === "string" ? n.args : null;
}

function callExtra(name: string, subject: ASTNode | null, args: ASTNode[], call: ASTNode): number {
  if (name === "matches") {
    const patternNode = args[0];
    const pattern = stringLiteral(patternNode);
    if (pattern === null) {
      throw new CostIssue(
        "matches() needs a string literal pattern, so it can be checked for catastrophic backtracking when the policy is written",
        patternNode?.start ?? call.start,
      );
    }
    let steps: number;
    try {
      steps = regexWork(pattern);
    } catch (e) {
      throw new CostIssue(e instanceof Error ? e.message : String(e), patternNode?.start ?? call.start);
    }
    const units = Math.ceil(steps / REGEX_STEPS_PER_UNIT);
    if (units > POLICY_COST_BUDGET) {
      throw new CostIssue(
        `regular expression can backtrack ~${steps.toExponential(1)} steps on a 4 KiB input; ` +
          `anchor it with ^ and bound repetitions (e.g. [a-z]{1,63} instead of [a-z]+)`,
        patternNode?.start ?? call.start,
      );
    }
    return add(STRING_SCAN_COST, units);
  }
  if (STRING_SCANS.has(name)) return STRING_SCAN_COST;
  if (name === "size") return subject && isStringNode(subject) ? STRING_SIZE_COST : 0;
  if (name === "split") return SPLIT_COST;
  if (name === "join") return add(STRING_SCAN_COST, subject ? bound(subject) : DEFAULT_BOUND);
  if (TZ_GETTERS.has(name) && args.length === 1) {
    const tz = stringLiteral(args[0]);
    if (tz !== null) {
      try {
        assertTimeZone(tz);
      } catch {
        throw new CostIssue(
          `unknown time zone "${tz}" (use an IANA name such as "Europe/Berlin")`,
          args[0]!.start,
        );
      }
    }
    return subject?.op === "id" && subject.args === "now" ? TZ_NOW_COST : TZ_OTHER_COST;
  }
  return 0;
}
