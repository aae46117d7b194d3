// Between phases the server keeps working after the load stops: outboxes flush thousands of rows to the
// embedded database (inside this very process) and alarms drain. Measuring the next phase on top of that
// would charge it for the previous one, so we wait until the runtime and this process are idle.
import { cpuSeconds } from "./proc.ts";

export async function settle(
  workerdPids: () => number[],
  opts: { idleCores?: number; maxMs?: number } = {},
): Promise<{ waitedMs: number; settled: boolean }> {
  const idle = opts.idleCores ?? 0.15;
  const deadline = Date.now() + (opts.maxMs ?? 90_000);
  const t0 = Date.now();
  let calm = 0;
  while (Date.now() < deadline) {
    const pids = workerdPids();
    const c0 = cpuSeconds(pids);
    const u0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 1000));
    const runtime = cpuSeconds(pids) - c0;
    const u = process.cpuUsage(u0);
    const self = (u.user + u.system) / 1e6;
    calm = runtime < idle && self < idle ? calm + 1 : 0;
    if (calm >= 2) return { waitedMs: Date.now() - t0, settled: true };
  }
  return { waitedMs: Date.now() - t0, settled: false };
}
