// A fleet of simulated workers in one process (see bench/lib/simworker.ts), driven by the orchestrator:
// start (register + live channel + heartbeats), collect deliveries and completions, a heartbeat storm.
import { serve } from "../lib/child.ts";
import { keepAliveAgent } from "../lib/http.ts";
import { type Delivery, type HeartbeatVia, SimWorker } from "../lib/simworker.ts";
import { nowMs, summarize } from "../lib/stats.ts";

export interface FleetStartArgs {
  url: string;
  joinToken: string;
  workers: number;
  gpus: number;
  gpuType: string;
  heartbeatMs: number;
  connect: boolean;
  /** Default "channel", as the agent does; reports ride the same heartbeats. */
  heartbeatVia?: HeartbeatVia;
}

const agent = keepAliveAgent(512);
let fleet: SimWorker[] = [];
let deliveries: Delivery[] = [];
let finished: [string, number][] = [];
let errors = 0;
let lastError = "";

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

serve({
  start: async (a: FleetStartArgs) => {
    const t0 = nowMs();
    const ws = Array.from(
      { length: a.workers },
      (_, i) =>
        new SimWorker({
          url: a.url,
          joinToken: a.joinToken,
          gpus: a.gpus,
          gpuType: a.gpuType,
          hostname: `sim-${i}`,
          agent,
          heartbeatVia: a.heartbeatVia ?? "channel",
          onDelivered: (d) => deliveries.push(d),
          onFinished: (id, at) => finished.push([id, at]),
          onError: (_what, e) => {
            errors++;
            lastError = String(e);
          },
        }),
    );
    await pool(ws, 8, (w) => w.register());
    const registeredMs = nowMs() - t0;
    if (a.connect) await pool(ws, 16, (w) => w.connect());
    for (const w of ws) w.startHeartbeats(a.heartbeatMs);
    fleet.push(...ws);
    return { workers: fleet.length, registeredMs, readyMs: nowMs() - t0 };
  },
  collect: async () => {
    const out = {
      deliveries,
      finished,
      errors,
      lastError,
      rejected: fleet.reduce((n, w) => n + w.rejected, 0),
    };
    deliveries = [];
    finished = [];
    return out;
  },
  counts: async () => ({ delivered: deliveries.length, finished: finished.length, errors }),
  /** Every worker heartbeats back to back (empty running list) for `seconds`. */
  storm: async (a: { seconds: number; workers?: number; via?: HeartbeatVia }) => {
    const ws = fleet.slice(0, a.workers ?? fleet.length);
    const lat: number[] = [];
    let failed = 0;
    const end = nowMs() + a.seconds * 1000;
    const t0 = nowMs();
    await Promise.all(
      ws.map(async (w) => {
        while (nowMs() < end) {
          const ms = await w.beat([], a.via ?? "http");
          if (Number.isNaN(ms)) failed++;
          else lat.push(ms);
        }
      }),
    );
    const secs = (nowMs() - t0) / 1000;
    return {
      workers: ws.length,
      seconds: Math.round(secs * 10) / 10,
      heartbeats: lat.length,
      failed,
      perSecond: Math.round((lat.length / secs) * 10) / 10,
      latencyMs: summarize(lat),
    };
  },
  stop: async () => {
    for (const w of fleet) w.stop();
    fleet = [];
    return {};
  },
});
