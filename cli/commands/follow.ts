// Following jobs until they end (submit --wait, logs --follow): transitions come from the live event feed;
// every few seconds the job is also read directly, so a lost event or a pruned history can never leave the
// command waiting forever.
import { type Api, seg } from "../lib/api.ts";
import { EventFeed, type LiveEvent, transportFromEnv } from "../lib/live-events.ts";
import type { Output } from "./output.ts";
import { isTerminal, type Job, type JobArray } from "./types.ts";

const RECONCILE_MS = 10_000;

export interface FollowOptions {
  feed: EventFeed;
  controller: AbortController;
  /** Is this event about what we follow? */
  relevant(e: LiveEvent): boolean;
  onEvent(e: LiveEvent): void;
  done(): boolean;
  /** Refreshes the state from the API (the safety net for lost events). */
  reconcile(): Promise<void>;
  reconcileMs?: number;
}

/** Consumes the feed until done() or the controller aborts; stops the feed either way. */
export async function followUntilDone(o: FollowOptions): Promise<void> {
  const timer = setInterval(() => {
    o.reconcile()
      .then(() => {
        if (o.done()) o.controller.abort();
      })
      .catch(() => {}); // the feed reports outages; this is only a safety net
  }, o.reconcileMs ?? RECONCILE_MS);
  try {
    for await (const e of o.feed) {
      if (!o.relevant(e)) continue;
      o.onEvent(e);
      if (o.done()) break;
    }
  } finally {
    clearInterval(timer);
    o.controller.abort();
  }
}

export function newFeed(
  api: Api,
  out: Output,
  controller: AbortController,
  scope: { job?: string; after?: number },
): EventFeed {
  return new EventFeed(api, {
    ...scope,
    signal: controller.signal,
    warn: (m) => out.info(`gantry: ${m}`),
    transport: transportFromEnv(),
  });
}

/** Follows one job to its end; resolves with the job as it ended (or as it is, if interrupted). */
export async function waitForJob(
  api: Api,
  out: Output,
  id: string,
  controller: AbortController,
  onEvent: (e: LiveEvent) => void,
): Promise<Job> {
  let job = await api.get<Job>(`/v1/jobs/${seg(id)}`);
  if (isTerminal(job.state)) return job;
  // after: 0 replays this job's transitions from its start, so none is missed between the read and now.
  const feed = newFeed(api, out, controller, { job: id, after: 0 });
  let state = job.state;
  await followUntilDone({
    feed,
    controller,
    relevant: (e) => e.jobId === id,
    onEvent: (e) => {
      state = e.to;
      onEvent(e);
    },
    done: () => isTerminal(state),
    reconcile: async () => {
      job = await api.get<Job>(`/v1/jobs/${seg(id)}`);
      if (isTerminal(job.state)) state = job.state;
    },
  });
  return isTerminal(state) || isTerminal(job.state) ? api.get<Job>(`/v1/jobs/${seg(id)}`) : job;
}

/** Follows every task of an array to its end; the feed must have been opened before the submission. */
export async function waitForArray(
  api: Api,
  feed: EventFeed,
  controller: AbortController,
  array: { id: string; size: number },
  onEvent: (e: LiveEvent) => void,
): Promise<JobArray | null> {
  const ended = new Set<string>();
  let summary: JobArray | null = null;
  const finished = (a: JobArray | null) =>
    a !== null && (a.counts.succeeded ?? 0) + (a.counts.failed ?? 0) + (a.counts.cancelled ?? 0) >= a.size;
  await followUntilDone({
    feed,
    controller,
    relevant: (e) => e.job?.arrayId === array.id,
    onEvent: (e) => {
      if (isTerminal(e.to)) ended.add(e.jobId);
      onEvent(e);
    },
    done: () => ended.size >= array.size || finished(summary),
    reconcile: async () => {
      summary = await api.get<JobArray>(`/v1/arrays/${seg(array.id)}`);
    },
  });
  // The live summary has the final counts; an interrupted wait returns what it is now.
  return api.get<JobArray>(`/v1/arrays/${seg(array.id)}`).catch(() => summary);
}

/**
 * Ctrl-C (or SIGTERM) while following: stop following, not the job. Returns a function that removes the
 * handlers and tells whether a signal arrived.
 */
export function stopOnSignal(controller: AbortController, onStop: () => void): () => boolean {
  let stopped = false;
  const handler = () => {
    if (stopped) return;
    stopped = true;
    onStop();
    controller.abort();
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
    return stopped;
  };
}
