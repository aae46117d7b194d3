// JSON over HTTP to the control plane with bearer tokens and RFC 9457 errors. Failures come out as two
// error classes so callers can decide what to retry: ApiError (the server answered with an error status)
// and NetworkError (no answer: refused, reset, DNS, timeout).
import { describeError } from "./errors.ts";
import { formatProblem, type Problem, toProblem } from "./problem.ts";

export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  /** From Retry-After on 429/503, in milliseconds. */
  readonly retryAfterMs: number | undefined;
  constructor(problem: Problem, retryAfterMs?: number) {
    super(formatProblem(problem));
    this.name = "ApiError";
    this.status = problem.status;
    this.problem = problem;
    this.retryAfterMs = retryAfterMs;
  }
}

export class NetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NetworkError";
  }
}

/** Worth trying again later: no answer, overload, or a server-side failure. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof NetworkError) return true;
  if (err instanceof ApiError) return err.status >= 500 || err.status === 429 || err.status === 408;
  return false;
}

export interface RequestOptions {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  url: string;
  token?: string;
  body?: unknown;
  timeoutMs?: number;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  fetch?: typeof fetch;
}

/** Sends one request; resolves with the parsed JSON body (undefined when empty) or throws. */
export async function requestJson<T = unknown>(opts: RequestOptions): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { accept: "application/json", ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const signals = [AbortSignal.timeout(opts.timeoutMs ?? 20_000)];
  if (opts.signal) signals.push(opts.signal);
  let res: Response;
  let text: string;
  try {
    res = await (opts.fetch ?? fetch)(opts.url, {
      method: opts.method,
      headers,
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      signal: AbortSignal.any(signals),
    });
    text = await res.text();
  } catch (err) {
    throw new NetworkError(`${opts.method} ${redactUrl(opts.url)} failed: ${describeError(err)}`, {
      cause: err,
    });
  }
  const body = parseBody(text);
  if (!res.ok) {
    throw new ApiError(
      toProblem(res.status, res.statusText, body),
      parseRetryAfter(res.headers.get("retry-after")),
    );
  }
  return { status: res.status, body: body as T };
}

function parseBody(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Retry-After is either delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

// URLs never carry tokens in this API, but strip userinfo and query anyway before they reach a log.
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    u.search = "";
    return u.toString();
  } catch {
    return "<invalid url>";
  }
}
