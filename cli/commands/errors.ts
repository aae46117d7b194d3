// Turns a failed API call into what a person needs: the problem's title, code and detail, the field errors
// or policy decisions behind it, and one hint saying what to do next.
import type { Role } from "../lib/config.ts";
import { type ApiError, NetworkError } from "../lib/http.ts";
import { formatProblem } from "../lib/problem.ts";

export interface HintContext {
  command: string;
  role: Role;
  url?: string | undefined;
  profile?: string | undefined;
  tokenSource?: "GANTRY_KEY" | "GANTRY_ADMIN_TOKEN" | "profile" | undefined;
  /** What to suggest on a 404 ("'gantry jobs' lists your jobs"). */
  notFound?: string | undefined;
}

/** The lines to print on stderr for an API or network failure (the first names the command). */
export function describeFailure(err: ApiError | NetworkError, ctx: HintContext): string[] {
  const lines: string[] = [];
  if (err instanceof NetworkError) {
    lines.push(`gantry ${ctx.command}: ${err.message}`);
  } else {
    lines.push(`gantry ${ctx.command}: ${formatProblem(err.problem)}`);
    const fieldErrors = Array.isArray(err.problem.errors) ? err.problem.errors : [];
    for (const e of fieldErrors as { path?: unknown; message?: unknown }[]) {
      const line = `${String(e.path ?? "")}: ${String(e.message ?? "")}`;
      // The detail often lists the field errors already; say each one once.
      if (!err.problem.detail?.includes(line)) lines.push(`  ${line}`);
    }
    const decisions = Array.isArray(err.problem.decisions) ? err.problem.decisions : [];
    for (const d of decisions as { matched?: boolean; effect?: string; name?: string; message?: string }[]) {
      if (d.matched) lines.push(`  policy "${d.name}" (${d.effect}): ${d.message ?? "matched"}`);
    }
  }
  const hint = hintFor(err, ctx);
  if (hint) lines.push(`hint: ${hint}`);
  return lines;
}

export function hintFor(err: ApiError | NetworkError, ctx: HintContext): string | null {
  const profile = ctx.profile && ctx.profile !== "default" ? ` --profile ${ctx.profile}` : "";
  if (err instanceof NetworkError) {
    return `is the control plane running at ${ctx.url ?? "the configured URL"}? Check the address with 'gantry login --url URL --key KEY${profile}' or GANTRY_URL`;
  }
  const code = err.problem.code;
  const requestId = typeof err.problem.requestId === "string" ? err.problem.requestId : "";
  switch (err.status) {
    case 400:
    case 413:
    case 415:
      return `see 'gantry ${ctx.command} --help' for the accepted values`;
    case 401: {
      const what = ctx.role === "admin" ? "admin token" : "key";
      const from =
        ctx.tokenSource && ctx.tokenSource !== "profile"
          ? ` (from ${ctx.tokenSource})`
          : ` (profile "${ctx.profile ?? "default"}")`;
      return `the server does not accept this ${what}${from}: it may be revoked or for another server; run 'gantry login --url URL --key KEY${profile}' with a valid one`;
    }
    case 403:
      if (code === "PolicyDenied") {
        return "'gantry policies' lists the policies; 'gantry policies evaluate [flags] -- CMD' dry-runs a submission";
      }
      return ctx.role === "admin"
        ? `this needs the platform admin token: 'gantry login --url URL --key ADMIN_TOKEN${profile}' stores it in the profile (or set GANTRY_ADMIN_TOKEN)`
        : "this needs a tenant API key with the right role (tenant admin for policy and key changes); ask your tenant admin";
    case 404:
      return ctx.notFound ?? "check the id (another tenant's objects are not found either)";
    case 409:
      if (code === "InvalidTransition")
        return "the job already finished; 'gantry show ID' shows how it ended";
      if (code === "QuotaExceeded") return "'gantry quota' shows the limits and what is in use";
      if (code === "AlreadyExists") return "pick another id, or use the existing one";
      return null;
    case 429: {
      const after = err.retryAfterMs !== undefined ? ` in ${Math.ceil(err.retryAfterMs / 1000)} s` : " later";
      return `rate limited: try again${after}`;
    }
    default:
      if (err.status >= 500) {
        return `the control plane could not answer; try again${requestId ? `, and quote request id ${requestId} if it persists` : ""}`;
      }
      return null;
  }
}
