// The exit codes of the user-facing `gantry` commands, and how an API answer maps onto them. One table so
// scripts can rely on them: a job's own failure (1) never looks like a CLI or server problem (2-6).
import { ApiError, NetworkError } from "./http.ts";

export const EXIT = {
  ok: 0,
  /** The job or request failed: `submit --wait` of a job that failed or was cancelled, or anything else. */
  failed: 1,
  /** Bad command line, or the server refused the request as invalid (400/413/415). */
  usage: 2,
  /** No credentials, or the server refused them (401) or their role (403). */
  auth: 3,
  notFound: 4,
  /** Refused in this state: 409 (already finished, already exists, quota) and policy denials. */
  conflict: 5,
  /** The control plane did not answer, or answered 5xx / 429 (try again later). */
  unavailable: 6,
  /** Ctrl-C while following a job (128 + SIGINT, as shells report it). */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  the job failed or was cancelled (submit --wait), or another failure
  2  usage error: bad flags or arguments, or the server rejected the request as invalid (400)
  3  authentication: not logged in, key rejected (401) or not allowed for this key's role (403)
  4  not found (404): no such job, policy, tenant, ...
  5  conflict or denied: the job already finished, the object exists, quota exceeded (409),
     or a policy denied the submission (403 PolicyDenied)
  6  the control plane is unreachable or unavailable (network error, 5xx, 429 rate limited)
  130  interrupted (Ctrl-C) while following with --wait or --follow; the job keeps running
`;

/** The exit code for an HTTP error status (and the problem's code, which tells policy denials apart). */
export function exitCodeForStatus(status: number, code?: string): ExitCode {
  if (status === 401) return EXIT.auth;
  if (status === 403) return code === "PolicyDenied" ? EXIT.conflict : EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 409) return EXIT.conflict;
  if (status === 408 || status === 429 || status >= 500) return EXIT.unavailable;
  if (status >= 400) return EXIT.usage;
  return EXIT.failed;
}

/** The exit code for anything a command may throw while talking to the control plane. */
export function exitCodeForError(err: unknown): ExitCode {
  if (err instanceof ApiError) return exitCodeForStatus(err.status, err.problem.code);
  if (err instanceof NetworkError) return EXIT.unavailable;
  return EXIT.failed;
}
