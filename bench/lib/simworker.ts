// A simulated GPU host speaking the real worker protocol over HTTP (PRODUCT.md §3 "Workers"): register with
// a join token, open the live channel (WebSocket /v1/workers/{id}/connect) on which assignments are pushed,
// heartbeat, and report each job `running` then `succeeded` in heartbeat batches (`updates`). Fake jobs
// finish at once, so a fleet of these measures the control plane, not the jobs. Hundreds run in one Node
// process: no child processes, no timers per job.
import type http from "node:http";
import WebSocket from "ws";
import { requestJson } from "./http.ts";
import { nowMs } from "./stats.ts";

export interface SimAssignment {
  jobId: string;
  lease: number;
  gpuIndices: number[];
  spec: { name: string; arrayIndex: number | null; tenantId: string };
}

export interface Delivery {
  jobId: string;
  name: string;
  arrayIndex: number | null;
  at: number;
  via: "ws" | "heartbeat";
}

export interface SimWorkerOptions {
  url: string;
  joinToken: string;
  gpus: number;
  gpuType: string;
  hostname: string;
  agent: http.Agent;
  /** Finish jobs (running + succeeded) as soon as they arrive; false = hold them (GPUs stay busy). */
  complete?: boolean;
  onDelivered?(d: Delivery): void;
  /** A job's final report was acknowledged by the control plane. */
  onFinished?(jobId: string, at: number): void;
  onError?(what: string, e: unknown): void;
  /** How heartbeats go: over the live channel when it is open (as the agent does), or always HTTP. */
  heartbeatVia?: HeartbeatVia;
}

export type HeartbeatVia = "channel" | "http";

interface BeatAnswer {
  assignments: SimAssignment[];
  rejected: { jobId: string }[];
}

interface Update {
  jobId: string;
  lease: number;
  state: "running" | "succeeded";
  exitCode?: number;
}

/** Largest batch of transitions in one heartbeat (the route accepts up to 2,000). */
const MAX_UPDATES = 1000;

export class SimWorker {
  id = "";
  token = "";
  private ws: WebSocket | null = null;
  private seen = new Set<string>();
  private pending: Update[] = [];
  private inFlight = false;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  heartbeats = 0;
  channelHeartbeats = 0;
  heartbeatErrors = 0;
  private beatSeq = 0;
  private waiting = new Map<string, { resolve(a: BeatAnswer): void; reject(e: Error): void }>();
  rejected = 0;

  constructor(private o: SimWorkerOptions) {}

  async register(): Promise<void> {
    const r = await requestJson<{ workerId: string; token: string }>(
      this.o.url,
      "POST",
      "/v1/workers/register",
      {
        token: this.o.joinToken,
        agent: this.o.agent,
        body: {
          hostname: this.o.hostname,
          gpus: Array.from({ length: this.o.gpus }, (_, i) => ({
            index: i,
            model: `SIM ${this.o.gpuType}`,
            type: this.o.gpuType,
            memoryMiB: 81_920,
          })),
          labels: { sim: "1" },
          agentVersion: "bench-sim",
        },
      },
    );
    if (r.status !== 201) throw new Error(`register → ${r.status}: ${JSON.stringify(r.body)}`);
    this.id = r.body.workerId;
    this.token = r.body.token;
  }

  /** Opens the live channel; resolves on the server's hello. */
  connect(): Promise<void> {
    const u = new URL(`/v1/workers/${this.id}/connect`, this.o.url);
    u.protocol = "ws:";
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(u, {
        headers: { authorization: `Bearer ${this.token}` },
        perMessageDeflate: false,
      });
      this.ws = ws;
      let hello = false;
      ws.on("message", (data: WebSocket.RawData) => {
        const at = nowMs();
        const msg = JSON.parse(data.toString()) as {
          type: string;
          id?: string;
          ok?: boolean;
          status?: number;
          detail?: string;
          assignments?: SimAssignment[];
          rejected?: { jobId: string }[];
        };
        if (msg.type === "heartbeat") {
          const w = this.waiting.get(msg.id ?? "");
          this.waiting.delete(msg.id ?? "");
          if (!w) return;
          if (msg.ok) w.resolve({ assignments: msg.assignments ?? [], rejected: msg.rejected ?? [] });
          else w.reject(new Error(`channel heartbeat → ${msg.status}: ${msg.detail}`));
        } else if (msg.type === "hello") {
          hello = true;
          resolve();
        } else if (msg.type === "assignments") this.accept(msg.assignments ?? [], at, "ws");
      });
      ws.on("error", (e) => {
        if (!hello) reject(e);
        else this.o.onError?.("ws", e);
      });
      ws.on("close", () => {
        for (const w of this.waiting.values()) w.reject(new Error("live channel closed"));
        this.waiting.clear();
        if (!hello) reject(new Error("live channel closed before hello"));
      });
    });
  }

  /** Periodic heartbeats like the agent's (the live channel is only an accelerator). */
  startHeartbeats(intervalMs: number): void {
    const tick = () => {
      if (this.stopped) return;
      void this.flush();
      this.timer = setTimeout(tick, intervalMs);
    };
    // Spread the fleet over the interval instead of beating in lockstep.
    this.timer = setTimeout(tick, Math.random() * intervalMs);
  }

  private accept(list: SimAssignment[], at: number, via: Delivery["via"]): void {
    let fresh = 0;
    for (const a of list) {
      const k = `${a.jobId}:${a.lease}`;
      if (this.seen.has(k)) continue;
      this.seen.add(k);
      fresh++;
      this.o.onDelivered?.({ jobId: a.jobId, name: a.spec.name, arrayIndex: a.spec.arrayIndex, at, via });
      if (this.o.complete !== false) {
        this.pending.push({ jobId: a.jobId, lease: a.lease, state: "running" });
        this.pending.push({ jobId: a.jobId, lease: a.lease, state: "succeeded", exitCode: 0 });
      }
    }
    if (fresh && this.o.complete !== false) void this.flush();
  }

  /**
   * One heartbeat carrying every pending transition. While one is in flight the next waits and then goes
   * at once with everything that piled up: batches grow with load, as a busy agent's do.
   */
  async flush(): Promise<void> {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = true;
    try {
      do {
        this.again = false;
        const updates = this.pending.splice(0, MAX_UPDATES);
        if (Number.isNaN(await this.beat(updates))) {
          // The control plane is down or overloaded: back off instead of retrying in a tight loop.
          if (!this.stopped) setTimeout(() => void this.flush(), 500).unref();
          break;
        }
      } while ((this.again || this.pending.length > 0) && !this.stopped);
    } finally {
      this.inFlight = false;
    }
  }

  /** One heartbeat; returns its round-trip time in ms (NaN on failure). */
  async beat(updates: Update[] = [], via: HeartbeatVia = this.o.heartbeatVia ?? "channel"): Promise<number> {
    const t0 = nowMs();
    try {
      const body = { running: [], updates };
      const overChannel = via === "channel" && this.ws?.readyState === WebSocket.OPEN;
      const answer = overChannel ? await this.channelBeat(body) : await this.httpBeat(body);
      const at = nowMs();
      this.heartbeats++;
      if (overChannel) this.channelHeartbeats++;
      const refused = new Set(answer.rejected.map((x) => x.jobId));
      this.rejected += refused.size;
      for (const u of updates)
        if (u.state === "succeeded" && !refused.has(u.jobId)) this.o.onFinished?.(u.jobId, at);
      if (answer.assignments.length) this.accept(answer.assignments, at, "heartbeat");
      return at - t0;
    } catch (e) {
      this.heartbeatErrors++;
      // Keep the transitions: the next heartbeat carries them again (the agent's at-least-once contract).
      this.pending.unshift(...updates);
      this.o.onError?.("heartbeat", e);
      return Number.NaN;
    }
  }

  private async httpBeat(body: { running: never[]; updates: Update[] }): Promise<BeatAnswer> {
    const r = await requestJson<BeatAnswer>(this.o.url, "POST", `/v1/workers/${this.id}/heartbeat`, {
      token: this.token,
      agent: this.o.agent,
      body,
    });
    if (r.status !== 200) throw new Error(`heartbeat → ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
    return r.body;
  }

  /** The agent's heartbeat frame on the live channel; the reply carries the same id. */
  private channelBeat(body: { running: never[]; updates: Update[] }): Promise<BeatAnswer> {
    const id = `b${++this.beatSeq}`;
    return new Promise<BeatAnswer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error("channel heartbeat: no reply in 30 s"));
      }, 30_000);
      this.waiting.set(id, {
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws!.send(JSON.stringify({ type: "heartbeat", id, ...body }));
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.ws?.terminate();
  }
}
