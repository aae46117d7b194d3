// The heartbeat exchange on its own (cli/agent/channel-heartbeat.ts) against the fake control plane:
// frame sizes with large batches, and the parsing of channel heartbeat replies.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LiveChannel } from "../../cli/agent/channel.ts";
import { HeartbeatSender, MAX_CHANNEL_FRAME_BYTES } from "../../cli/agent/channel-heartbeat.ts";
import { ControlPlaneClient } from "../../cli/agent/client.ts";
import { parseChannelMessage, type Registration } from "../../cli/agent/protocol.ts";
import { UpdateQueue } from "../../cli/agent/updates.ts";
import { silentLogger } from "../../cli/lib/log.ts";
import { FakeControlPlane, MAX_FRAME_BYTES, until } from "./agent-fake-control-plane.ts";

let cp: FakeControlPlane;
let channel: LiveChannel | undefined;
const abort = new AbortController();

beforeEach(async () => {
  cp = await new FakeControlPlane().start();
});

afterEach(async () => {
  channel?.close();
  await cp.close();
});

async function setup(useChannel = true) {
  const client = new ControlPlaneClient(cp.url);
  const reg: Registration = await client.register(cp.joinToken, {
    hostname: "frames",
    gpus: [],
    labels: {},
    agentVersion: "test",
  });
  if (useChannel) {
    channel = new LiveChannel({
      url: client.channelUrl(reg),
      token: reg.token,
      logger: silentLogger,
      onMessage() {},
    });
    channel.start();
    await until(() => channel!.connected, "channel connected");
  }
  // Paused: status calls never run, every update has to ride in a heartbeat.
  const queue = new UpdateQueue({ send: async () => ({ kind: "ok" }) });
  queue.pause();
  const sender = new HeartbeatSender({
    client,
    queue,
    logger: silentLogger,
    signal: abort.signal,
    channel: () => channel,
    timeoutMs: () => 2000,
    current: () => true,
  });
  /** Heartbeats until the queue is empty; returns how many it took. */
  const drainQueue = async () => {
    let n = 0;
    while (queue.size > 0) {
      const out = await sender.exchange(reg, 1, []);
      expect(out.ok).toBe(true);
      if (++n > 100) throw new Error("queue does not drain");
    }
    return n;
  };
  return { reg, queue, sender, drainQueue };
}

const tail = (ch: string, i: number) => `${i}:`.padEnd(64 * 1024, ch);
const delivered = () =>
  cp.statuses.map((s) => ({ jobId: s.jobId, state: s.body.state, transport: s.transport }));

describe("channel heartbeat frames", () => {
  it("spreads 40 updates with 64 KiB log tails over frames of at most ~512 KiB, in order", async () => {
    const { queue, sender, drainQueue } = await setup();
    for (let i = 0; i < 20; i++) {
      queue.push({ jobId: `j${i}`, lease: 1, state: "running", logTail: tail("a", i) }, 1);
      queue.push({ jobId: `j${i}`, lease: 1, state: "succeeded", exitCode: 0, logTail: tail("b", i) }, 1);
    }
    const beats = await drainQueue();
    expect(beats).toBeGreaterThanOrEqual(5);
    expect(sender.delivered).toEqual({ channel: beats, http: 0 });
    expect(Math.max(...cp.frameBytes)).toBeLessThanOrEqual(600 * 1024);
    const got = delivered();
    expect(got).toHaveLength(40);
    expect(got.every((d) => d.transport === "channel")).toBe(true);
    for (let i = 0; i < 20; i++) {
      expect(got.filter((d) => d.jobId === `j${i}`).map((d) => d.state)).toEqual(["running", "succeeded"]);
    }
  });

  it("sends a batch over HTTP when its frame would exceed 1 MiB (escaped control characters)", async () => {
    const { queue, sender, drainQueue } = await setup();
    // Each \u0001 takes 6 bytes in JSON: a 64 Ki-character tail is 384 KiB on the wire.
    for (let i = 0; i < 12; i++)
      queue.push({ jobId: `k${i}`, lease: 1, state: "failed", logTail: tail("\u0001", i) }, 1);
    await drainQueue();
    expect(sender.delivered.http).toBeGreaterThanOrEqual(2);
    expect(cp.frameBytes.every((b) => b <= MAX_FRAME_BYTES)).toBe(true);
    expect(cp.heartbeats.filter((h) => h.outcome === 413)).toEqual([]);
    const got = delivered();
    expect(got.map((d) => d.jobId).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `k${i}`).sort());
    expect(MAX_CHANNEL_FRAME_BYTES).toBe(MAX_FRAME_BYTES);
  });

  it("uses HTTP without a channel, with the usual batch limits", async () => {
    const { queue, sender, drainQueue } = await setup(false);
    for (let i = 0; i < 300; i++) queue.push({ jobId: `h${i}`, lease: 1, state: "running" }, 1);
    expect(await drainQueue()).toBe(2); // 256 + 44: a full batch asks for the next heartbeat at once
    expect(sender.delivered).toEqual({ channel: 0, http: 2 });
    expect(cp.frameBytes).toEqual([]);
  });
});

describe("parseChannelMessage: heartbeat replies", () => {
  it("parses a success like the HTTP answer", () => {
    const text = JSON.stringify({
      type: "heartbeat",
      id: "hb-1",
      ok: true,
      assignments: [{ jobId: "a" }],
      cancel: ["c", 3],
      drain: true,
      rejected: [{ jobId: "r", code: "StaleLease", message: "old" }],
    });
    expect(parseChannelMessage(text)).toEqual({
      type: "heartbeat",
      reply: {
        id: "hb-1",
        ok: true,
        response: {
          assignments: [{ jobId: "a" }],
          cancel: ["c"],
          drain: true,
          rejected: [{ jobId: "r", code: "StaleLease" }],
        },
      },
    });
  });

  it("parses refusals, a null id, and treats a malformed reply as a server failure", () => {
    const refusal = {
      type: "heartbeat",
      id: null,
      ok: false,
      status: 413,
      code: "PayloadTooLarge",
      detail: "big",
    };
    expect(parseChannelMessage(JSON.stringify(refusal))).toEqual({
      type: "heartbeat",
      reply: { id: null, ok: false, status: 413, code: "PayloadTooLarge", detail: "big" },
    });
    expect(parseChannelMessage(JSON.stringify({ type: "heartbeat", id: "x" }))).toMatchObject({
      reply: { id: "x", ok: false, status: 502 },
    });
  });
});

describe("parseChannelMessage: the shard's greeting", () => {
  it("parses hello with the worker id, and without one", () => {
    expect(parseChannelMessage(JSON.stringify({ type: "hello", workerId: "w-03-abc" }))).toEqual({
      type: "hello",
      workerId: "w-03-abc",
    });
    expect(parseChannelMessage(JSON.stringify({ type: "hello" }))).toEqual({ type: "hello", workerId: null });
  });
});
