// One error model for the whole API: a stable machine code, mapped once to an HTTP status and rendered as
// RFC 9457 problem+json by functions/problem.ts. Durable Objects return these as values (RPC loses classes).
export const ERROR_STATUS = {
  BadRequest: 400,
  ValidationFailed: 400,
  MalformedJson: 400,
  InvalidExpression: 400,
  Unauthorized: 401,
  Forbidden: 403,
  PolicyDenied: 403,
  NotFound: 404,
  MethodNotAllowed: 405,
  Conflict: 409,
  AlreadyExists: 409,
  InvalidTransition: 409,
  StaleLease: 409,
  QuotaExceeded: 409,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  RateLimited: 429,
  Internal: 500,
  Misconfigured: 500,
  DatabaseUnavailable: 503,
  Unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** JSON values: what a Durable Object RPC result may carry (`unknown` would not type-check as serializable). */
export type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

export interface FieldError {
  path: string;
  message: string;
}

/** A failure as plain data, safe to return from a Durable Object RPC method. */
export interface Failure {
  ok: false;
  code: ErrorCode;
  message: string;
  errors?: FieldError[];
  /** Extra members of the problem document (e.g. decisions for PolicyDenied). */
  extra?: Record<string, Json>;
  retryAfterSeconds?: number;
}

export type Result<T> = ({ ok: true } & T) | Failure;

export const fail = (code: ErrorCode, message: string, more: Partial<Failure> = {}): Failure => ({
  ok: false,
  code,
  message,
  ...more,
});

export class GantryError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly errors?: FieldError[],
    readonly extra?: Record<string, Json>,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
  }
  static from(f: Failure): GantryError {
    return new GantryError(f.code, f.message, f.errors, f.extra, f.retryAfterSeconds);
  }
}

/** Unwrap a DO result (as typed by the RPC stub) or throw its failure as an HTTP error. */
export function unwrap<R extends { ok: boolean }>(r: R): Extract<R, { ok: true }> {
  if (!r.ok) throw GantryError.from(r as unknown as Failure);
  return r as Extract<R, { ok: true }>;
}
