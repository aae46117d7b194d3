// RFC 9457 problem+json for every error, with a stable machine `code` and the request id. One mapper for
// the whole app (app.onError) so no route can answer an error in another shape.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { ConfigError } from "../src/env.ts";
import { ERROR_STATUS, type ErrorCode, type FieldError, GantryError } from "../src/errors.ts";
import { DatabaseUnavailable } from "../src/lib/pg.ts";
import type { HonoEnv } from "./hono-env.ts";

const TITLES: Record<ErrorCode, string> = {
  BadRequest: "Bad request",
  ValidationFailed: "Request validation failed",
  MalformedJson: "Malformed JSON",
  InvalidExpression: "Invalid policy expression",
  Unauthorized: "Unauthorized",
  Forbidden: "Forbidden",
  PolicyDenied: "Denied by policy",
  NotFound: "Not found",
  MethodNotAllowed: "Method not allowed",
  Conflict: "Conflict",
  AlreadyExists: "Already exists",
  InvalidTransition: "Invalid state transition",
  StaleLease: "Stale lease",
  QuotaExceeded: "Quota exceeded",
  PayloadTooLarge: "Payload too large",
  UnsupportedMediaType: "Unsupported media type",
  RateLimited: "Too many requests",
  Internal: "Internal error",
  Misconfigured: "Server misconfigured",
  DatabaseUnavailable: "Database unavailable",
  Unavailable: "Service unavailable",
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  requestId: string;
  instance: string;
  errors?: FieldError[];
  [k: string]: unknown;
}

export function problem(
  c: Context<HonoEnv>,
  code: ErrorCode,
  detail: string,
  errors?: FieldError[],
  extra?: Record<string, unknown>,
  retryAfterSeconds?: number,
): Response {
  const status = ERROR_STATUS[code];
  const body: Problem = {
    type: `https://gantry.dev/problems/${code}`,
    title: TITLES[code],
    status,
    detail,
    code,
    requestId: c.get("requestId") ?? "",
    instance: new URL(c.req.url).pathname,
    ...(errors?.length ? { errors } : {}),
    ...(extra ?? {}),
  };
  const headers: Record<string, string> = { "content-type": "application/problem+json" };
  if (retryAfterSeconds) headers["retry-after"] = String(retryAfterSeconds);
  if (code === "Unauthorized") headers["www-authenticate"] = 'Bearer realm="gantry"';
  return new Response(JSON.stringify(body), { status, headers });
}

export function onError(err: Error, c: Context<HonoEnv>): Response {
  if (err instanceof GantryError) {
    return problem(c, err.code, err.message, err.errors, err.extra, err.retryAfterSeconds);
  }
  if (err instanceof HTTPException) {
    // Raised by Hono itself: malformed JSON in a validated body, unsupported content types, body limit.
    const s = err.status;
    if (s === 400) return problem(c, "MalformedJson", err.message || "request body is not valid JSON");
    if (s === 413) return problem(c, "PayloadTooLarge", err.message || "request body too large");
    if (s === 415) return problem(c, "UnsupportedMediaType", "send the body as application/json");
    if (s === 401) return problem(c, "Unauthorized", err.message);
    return problem(c, s >= 500 ? "Internal" : "BadRequest", err.message);
  }
  if (err instanceof DatabaseUnavailable) {
    return problem(
      c,
      "DatabaseUnavailable",
      "the history database is unreachable; live operations still work",
    );
  }
  if (err instanceof ConfigError) return problem(c, "Misconfigured", err.message);
  // Unexpected: log it (never the request's secrets) and answer a generic 500 with the request id.
  console.error(
    JSON.stringify({
      t: new Date().toISOString(),
      level: "error",
      msg: "unhandled error",
      requestId: c.get("requestId"),
      path: new URL(c.req.url).pathname,
      // Query errors list their parameters, which can hold tenants' data: keep the message, drop those.
      error: String(err?.stack ?? err).replace(/\nparams:[^\n]*/g, ""),
    }),
  );
  return problem(c, "Internal", "unexpected error; quote the request id when reporting it");
}
