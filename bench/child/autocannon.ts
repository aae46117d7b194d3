// autocannon in its own process (programmatic API): the load generator must not share an event loop with
// the embedded database the orchestrator runs. One call = an optional warm-up, then the measured run.
import autocannon from "autocannon";
import { serve } from "../lib/child.ts";

export interface CannonArgs {
  url: string;
  method: "GET" | "POST";
  path: string;
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  seconds: number;
  warmupSeconds?: number;
}

export interface CannonResult {
  seconds: number;
  requests: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Completed requests per second over the whole run. */
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
}

function run(a: CannonArgs, seconds: number): Promise<autocannon.Result> {
  return autocannon({
    url: a.url + a.path,
    method: a.method,
    headers: a.headers,
    body: a.body,
    connections: a.connections,
    duration: seconds,
  });
}

serve({
  run: async (a: CannonArgs): Promise<CannonResult> => {
    if (a.warmupSeconds) await run(a, a.warmupSeconds);
    const r = await run(a, a.seconds);
    const total = r["2xx"] + r.non2xx;
    return {
      seconds: r.duration,
      requests: total,
      ok2xx: r["2xx"],
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      rps: Math.round((total / r.duration) * 10) / 10,
      latencyMs: {
        p50: r.latency.p50,
        p90: r.latency.p90,
        p99: r.latency.p99,
        max: r.latency.max,
        mean: r.latency.average,
      },
    };
  },
});
