// Registration with the join token, retried while the control plane is unreachable: an agent started
// before the control plane (or during an outage) must wait, not exit, so hosts can be provisioned in any
// order. A rejected token or a refused request cannot get better by waiting and ends the agent.
import { Backoff, type BackoffOptions, sleep } from "../lib/backoff.ts";
import { CliError } from "../lib/errors.ts";
import { ApiError, isRetryable } from "../lib/http.ts";
import type { Logger } from "../lib/log.ts";
import { formatProblem } from "../lib/problem.ts";
import type { ControlPlaneClient } from "./client.ts";
import type { RegisterRequest, Registration } from "./protocol.ts";

/** Exit code for a join token the control plane refused. */
export const EXIT_TOKEN_REJECTED = 3;

export class AbortedError extends Error {
  constructor() {
    super("aborted");
    this.name = "AbortedError";
  }
}

export async function registerWithRetry(
  client: ControlPlaneClient,
  joinToken: string,
  body: RegisterRequest,
  opts: { logger: Logger; signal: AbortSignal; backoff?: BackoffOptions },
): Promise<Registration> {
  const backoff = new Backoff(opts.backoff ?? { initialMs: 1000, maxMs: 30_000 });
  for (;;) {
    if (opts.signal.aborted) throw new AbortedError();
    try {
      return await client.register(joinToken, body, opts.signal);
    } catch (err) {
      if (opts.signal.aborted) throw new AbortedError();
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        throw new CliError(
          `join token rejected: ${formatProblem(err.problem)}. Check the token or ask your admin for a new one`,
          EXIT_TOKEN_REJECTED,
        );
      }
      if (!isRetryable(err)) {
        const why = err instanceof ApiError ? formatProblem(err.problem) : String(err);
        throw new CliError(`registration with ${client.baseUrl} failed: ${why}`, 1);
      }
      const delay = backoff.next();
      opts.logger.warn("control plane unreachable; retrying registration", {
        url: client.baseUrl,
        error: err instanceof Error ? err.message : String(err),
        attempt: backoff.attempts,
        retryInMs: delay,
      });
      await sleep(delay, opts.signal);
    }
  }
}
