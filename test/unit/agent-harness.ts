// A real agent (runAgent, in this process) pointed at a FakeControlPlane, with test-speed backoffs and its
// JSON log lines kept for assertions. Each test file passes what differs from these defaults.
import { type AgentHandle, type AgentRuntime, runAgent } from "../../cli/agent/agent.ts";
import type { AgentOptions } from "../../cli/agent/options.ts";
import { createLogger } from "../../cli/lib/log.ts";
import type { FakeControlPlane } from "./agent-fake-control-plane.ts";

export interface TestAgent {
  handle: AgentHandle;
  lines: string[];
  logs(): Record<string, unknown>[];
}

/** Starts an agent against `cp` and adds it to `agents` (the caller kills those after each test). */
export function startTestAgent(
  cp: FakeControlPlane,
  agents: AgentHandle[],
  opts: Partial<AgentOptions> = {},
  rt: AgentRuntime = {},
): TestAgent {
  const lines: string[] = [];
  const handle = runAgent(
    {
      url: cp.url,
      joinToken: cp.joinToken,
      gpus: "fake:4xH100",
      hostname: "test-host",
      labels: {},
      drainTimeoutSeconds: 600,
      logLevel: "debug",
      ...opts,
    },
    {
      logger: createLogger({ level: "debug", write: (l) => lines.push(l) }),
      killGraceMs: 300,
      registerBackoff: { initialMs: 20, maxMs: 100 },
      updateBackoff: { initialMs: 20, maxMs: 100 },
      channelBackoff: { initialMs: 20, maxMs: 100 },
      minHeartbeatGapMs: 20,
      flushTimeoutMs: 3000,
      ...rt,
    },
  );
  agents.push(handle);
  return { handle, lines, logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
