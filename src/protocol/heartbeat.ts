// What an agent sends in a heartbeat, validated the same way whichever way it arrives: the HTTP route
// (functions/workers.ts) and the live channel (src/do/fleet-shard.ts) share these schemas.
import { z } from "zod";

/**
 * A job's output may carry NUL bytes the agent cannot help, and Postgres stores none (see validation.ts):
 * replaced rather than refused, since a refused report would leave the job's outcome unrecorded.
 */
const agentText = (max: number) =>
  z
    .string()
    .max(max)
    .overwrite((s) => s.replaceAll("\u0000", "\uFFFD"));

export const JobUpdateSchema = z.strictObject({
  jobId: z.string().max(200),
  lease: z.number().int().min(0),
  state: z.enum(["running", "succeeded", "failed", "cancelled"]),
  exitCode: z.number().int().nullable().optional(),
  message: agentText(4096).nullable().optional(),
  reason: agentText(64).nullable().optional(),
  logTail: agentText(70_000).nullable().optional(),
});

const heartbeatFields = {
  running: z.array(z.strictObject({ jobId: z.string().max(200), lease: z.number().int() })).max(4096),
  updates: z.array(JobUpdateSchema).max(2000).optional(),
};

export const HeartbeatBodySchema = z.strictObject(heartbeatFields);

/** The same heartbeat as a live-channel frame: `type` and an `id` the reply echoes. */
export const ChannelHeartbeatSchema = z.strictObject({
  type: z.literal("heartbeat"),
  id: z.string().min(1).max(64),
  ...heartbeatFields,
});

/** Largest live-channel frame the shard reads (the HTTP heartbeat allows 8 MiB; agents split bigger batches). */
export const MAX_CHANNEL_FRAME_BYTES = 1024 * 1024;
