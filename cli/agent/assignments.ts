// Turns raw assignments (from the live channel or a heartbeat answer) into started jobs. Malformed ones
// are reported failed when they name a job and lease, so they do not sit leased to this worker until the
// lease expires; while draining, assignments are ignored (the control plane stops sending them).
import type { Logger } from "../lib/log.ts";
import type { JobManager } from "./jobs.ts";
import { type Assignment, type JobUpdate, parseAssignment } from "./protocol.ts";

export interface AcceptContext {
  jobs: JobManager;
  epoch: number;
  accepting: boolean;
  log: Logger;
  report(update: JobUpdate): void;
  onStarted?(a: Assignment): void;
}

export function acceptAssignments(raw: unknown[], ctx: AcceptContext): void {
  for (const item of raw) {
    const parsed = parseAssignment(item);
    if (!parsed.ok) {
      ctx.log.error("invalid assignment", { jobId: parsed.jobId, error: parsed.error });
      if (parsed.jobId !== undefined && parsed.lease !== undefined && ctx.accepting) {
        ctx.report({
          jobId: parsed.jobId,
          lease: parsed.lease,
          state: "failed",
          exitCode: 127,
          reason: "SpawnError",
          message: `invalid assignment: ${parsed.error}`,
        });
      }
      continue;
    }
    const a = parsed.assignment;
    if (!ctx.accepting) {
      ctx.log.info("ignoring assignment: this worker is draining", { jobId: a.jobId });
    } else if (ctx.jobs.start(a, ctx.epoch) === "started") {
      ctx.onStarted?.(a);
    } else {
      ctx.log.debug("ignoring duplicate assignment", { jobId: a.jobId, lease: a.lease });
    }
  }
}
