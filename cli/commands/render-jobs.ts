// How jobs and their transitions look in tables and progress lines, shared by jobs, show, queue, submit
// --wait and logs --follow so a job reads the same everywhere.
import { formatAgo, formatDuration, secondsBetween } from "../lib/duration.ts";
import type { LiveEvent } from "../lib/live-events.ts";
import { type Column, renderTable } from "../lib/table.ts";
import { isTerminal, type Job } from "./types.ts";

/** "2xH100" when the type is known (asked for, or where it landed), else just the count. */
export function gpuShape(j: Pick<Job, "gpus" | "gpuType" | "assignedGpuType">): string {
  const type = j.gpuType ?? j.assignedGpuType;
  return type ? `${j.gpus}x${type}` : String(j.gpus);
}

/** Time spent running (to now for a running job); "-" before it started. */
export function runtime(j: Pick<Job, "startedAt" | "finishedAt">, now: number): string {
  const s = secondsBetween(j.startedAt, j.finishedAt, now);
  return s === null ? "-" : formatDuration(s);
}

export function jobColumns(now: number): Column<Job>[] {
  return [
    { header: "ID", value: (j) => j.id },
    { header: "NAME", value: (j) => j.name, max: 32 },
    { header: "USER", value: (j) => j.user, max: 20 },
    { header: "STATE", value: (j) => (j.cancelRequested && !isTerminal(j.state) ? `${j.state}*` : j.state) },
    { header: "PRIORITY", value: (j) => j.priority },
    { header: "GPUS", value: (j) => gpuShape(j) },
    { header: "SUBMITTED", value: (j) => formatAgo(j.submittedAt, now) },
    { header: "RUNTIME", value: (j) => runtime(j, now), right: true },
    { header: "EXIT", value: (j) => j.exitCode, right: true },
  ];
}

export function renderJobTable(jobs: Job[], now: number): string {
  return renderTable(jobColumns(now), jobs);
}

/** "14:02:11" in local time: transitions are read as they happen. */
export function clock(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toTimeString().slice(0, 8);
}

/** A reason that only repeats the state it led to ("Failed" into failed, "Started" into running). */
export function redundantReason(reason: string | null, state: string): boolean {
  if (!reason) return true;
  const r = reason.toLowerCase();
  return r === state || r === "submitted" || r === "started" || r === "scheduled";
}

/** One transition for people: "14:02:11  job_…  train  running → failed  exit 3, OOM (attempt 2)". */
export function transitionLine(e: LiveEvent, withJob: boolean): string {
  const parts = [clock(e.at)];
  if (withJob) parts.push(e.jobId, e.job?.name ?? "");
  parts.push(`${e.from ?? "new"} → ${e.to}`);
  const details: string[] = [];
  if (!redundantReason(e.reason, e.to)) details.push(e.reason!);
  const exit = e.exitCode !== null && e.exitCode !== undefined ? `exit ${e.exitCode}` : null;
  if (exit && !e.message?.includes(`code ${e.exitCode}`)) details.push(exit);
  if (e.message) details.push(e.message);
  if (e.attempt > 1) details.push(`attempt ${e.attempt}`);
  if (details.length) parts.push(details.join(", "));
  return parts.filter((p) => p !== "").join("  ");
}
