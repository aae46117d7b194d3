// Error text for policy authors: cel-js's parse/type/evaluation errors turned into messages that say what
// to change, with the position as 1-based line/column (the API promises "line 1, column 12: …").
import { type ASTNode, TypeError as CelTypeError, EvaluationError, ParseError } from "@marcbachmann/cel-js";
import { JOB_FIELDS, POLICY_VARIABLES, TENANT_FIELDS } from "./policy-env.ts";

export interface PolicyPosition {
  /** 1-based. */
  line: number;
  /** 1-based, in characters (code points) from the start of the line. */
  column: number;
  /** 0-based UTF-16 offset into the expression. */
  offset: number;
}

/** Line/column of a 0-based UTF-16 offset; columns count code points so "é" is one column. */
export function positionAt(source: string, offset: number): PolicyPosition {
  const at = Math.max(0, Math.min(offset, source.length));
  const lineStart = source.lastIndexOf("\n", at - 1) + 1;
  let line = 1;
  for (let i = source.indexOf("\n"); i !== -1 && i < at; i = source.indexOf("\n", i + 1)) line++;
  return { line, column: [...source.slice(lineStart, at)].length + 1, offset: at };
}

const TOKEN_TEXT: Record<string, string> = {
  EOF: "end of input",
  RPAREN: "')'",
  LPAREN: "'('",
  RBRACKET: "']'",
  LBRACKET: "'['",
  RBRACE: "'}'",
  LBRACE: "'{'",
  COMMA: "','",
  COLON: "':'",
  DOT: "'.'",
  QUESTION: "'?'",
  IDENTIFIER: "an identifier",
};

const LIMIT_TEXT: Record<string, string> = {
  maxAstNodes: "expression too large",
  maxDepth: "expression nested too deeply",
};

export function errorOffset(e: unknown): number | null {
  if (e instanceof ParseError || e instanceof CelTypeError || e instanceof EvaluationError) {
    return e.range?.start ?? null;
  }
  return null;
}

/** cel-js's one-line summary, phrased for someone fixing a policy. */
export function describeCelError(e: unknown): string {
  if (!(e instanceof ParseError || e instanceof CelTypeError || e instanceof EvaluationError)) {
    return e instanceof Error ? e.message : String(e);
  }
  const s = e.summary;
  if (e.code === "unexpected_token") {
    const tok = s.replace(/^Unexpected token: /, "");
    return tok === "EOF" ? "unexpected end of input" : `unexpected ${TOKEN_TEXT[tok] ?? tok.toLowerCase()}`;
  }
  if (e.code === "expected_token") {
    const m = /^Expected (\w+), got (\w+)$/.exec(s);
    if (m) return `expected ${TOKEN_TEXT[m[1]!] ?? m[1]} but found ${TOKEN_TEXT[m[2]!] ?? m[2]}`;
  }
  if (e.code === "limit_exceeded") {
    const m = /^Exceeded (\w+) \((\d+)\)$/.exec(s);
    const what = m ? LIMIT_TEXT[m[1]!] : undefined;
    if (m && what)
      return `${what}: more than ${m[2]} ${what === "expression too large" ? "nodes" : "levels"}`;
  }
  if (e.code === "unknown_variable") {
    return `${lowerFirst(s)} (policies can use ${POLICY_VARIABLES.join(", ")})`;
  }
  if (e.code === "no_such_key" && e instanceof CelTypeError) {
    const owner = ownerOf(e.node);
    if (owner)
      return `${owner.name} has no field "${s.replace(/^No such key: /, "")}" (fields: ${owner.fields})`;
  }
  return lowerFirst(s);
}

function ownerOf(node: ASTNode | undefined): { name: string; fields: string } | null {
  if (node?.op !== "." && node?.op !== ".?") return null;
  const t = (node.args[0] as ASTNode & { checkedType?: { name: string } }).checkedType?.name;
  if (t === "gantry.Job") return { name: "job", fields: Object.keys(JOB_FIELDS).join(", ") };
  if (t === "gantry.Tenant") return { name: "tenant", fields: Object.keys(TENANT_FIELDS).join(", ") };
  return null;
}

export const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/** A run-time failure, for the decision's `error` and the fail-closed message. */
export function runtimeErrorText(e: unknown): string {
  const text =
    e instanceof EvaluationError ? lowerFirst(e.summary) : e instanceof Error ? e.message : String(e);
  if (e instanceof EvaluationError && e.code === "no_such_key") {
    return `${text} (guard optional fields with has(), e.g. has(job.labels.team) && ...)`;
  }
  return text;
}
