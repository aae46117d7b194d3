// Many concurrent tenant clients submitting jobs, recording when each request was sent and answered. Job
// names are unique per submission, so the fleet process can match what it is handed to when it was asked
// for (the assignment carries the name) without the two processes sharing any state.
import { serve } from "../lib/child.ts";
import { keepAliveAgent, requestJson } from "../lib/http.ts";
import { nowMs } from "../lib/stats.ts";

export interface SubmitArgs {
  url: string;
  key: string;
  /** Clients submitting at once (closed loop: each sends its next submission when the last is answered). */
  concurrency: number;
  /** Stop after this many submissions… */
  total?: number;
  /** …or after this many seconds. */
  seconds?: number;
  /** Open loop: start submissions at this rate (per second), still at most `concurrency` in flight. */
  ratePerSecond?: number;
  prefix: string;
  job: Record<string, unknown>;
  arraySize?: number;
}

export interface SubmitRecord {
  name: string;
  sentAt: number;
  ackAt: number;
  status: number;
}

const agent = keepAliveAgent(512);

serve({
  run: async (a: SubmitArgs) => {
    const records: SubmitRecord[] = [];
    let next = 0;
    const t0 = nowMs();
    const end = a.seconds ? t0 + a.seconds * 1000 : Number.POSITIVE_INFINITY;
    const total = a.total ?? Number.POSITIVE_INFINITY;
    let lastError = "";
    const one = async () => {
      const i = next++;
      if (a.ratePerSecond) {
        const due = t0 + (i * 1000) / a.ratePerSecond;
        const wait = due - nowMs();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const name = `${a.prefix}-${i}`;
      const sentAt = nowMs();
      let status = 0;
      try {
        const r = await requestJson(a.url, "POST", "/v1/jobs", {
          token: a.key,
          agent,
          body: { ...a.job, name, ...(a.arraySize ? { array: { size: a.arraySize } } : {}) },
          timeoutMs: 120_000,
        });
        status = r.status;
        if (status >= 300) lastError = JSON.stringify(r.body).slice(0, 300);
      } catch (e) {
        lastError = String(e);
      }
      records.push({ name, sentAt, ackAt: nowMs(), status });
    };
    await Promise.all(
      Array.from({ length: a.concurrency }, async () => {
        while (next < total && nowMs() < end) await one();
      }),
    );
    return { records, seconds: (nowMs() - t0) / 1000, lastError };
  },
});
