// Durations and times as people type and read them: "90s", "10m", "1h30m" in; "3m ago", "2h05m" out.

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/**
 * Parses "90", "90s", "10m", "2h", "1h30m", "1d" (and "500ms") into seconds. A bare number is seconds. Returns null when
 * the text is not a duration (callers turn that into a usage error naming the flag).
 */
export function parseDuration(text: string): number | null {
  const s = text.trim().toLowerCase();
  if (s === "") return null;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|[smhdw])/g;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    if (m.index !== consumed) return null;
    total += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
    consumed += m[0].length;
  }
  return consumed === s.length ? total : null;
}

/** "45s", "3m12s", "2h05m", "3d04h": two units at most, the larger first. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor((s % 86_400) / 3600))}h`;
}

/** One unit, for ages: "12s", "3m", "2h", "4d". */
function coarse(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** "just now", "3m ago", "in 2h"; "-" when there is no time. */
export function formatAgo(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return "-";
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return "-";
  const diff = (now - at) / 1000;
  if (Math.abs(diff) < 2) return "just now";
  return diff > 0 ? `${coarse(diff)} ago` : `in ${coarse(-diff)}`;
}

/** Seconds between two ISO times (the second defaults to now); null when the first is missing. */
export function secondsBetween(
  from: string | null | undefined,
  to: string | null | undefined,
  now: number = Date.now(),
): number | null {
  if (!from) return null;
  const a = Date.parse(from);
  const b = to ? Date.parse(to) : now;
  if (Number.isNaN(a) || Number.isNaN(b)) return null;
  return Math.max(0, (b - a) / 1000);
}

/**
 * A point in time for --from/--to: an ISO date or date-time ("2026-01-01", "2026-01-01T12:00:00Z"), or a
 * duration meaning that long ago ("7d", "24h"). Returns an ISO string, or null when unparseable.
 */
export function parseTimePoint(text: string, now: number = Date.now()): string | null {
  const ago = parseDuration(text);
  if (ago !== null && !/^\d+(\.\d+)?$/.test(text.trim())) return new Date(now - ago * 1000).toISOString();
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return null;
  const at = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text);
  return Number.isNaN(at) ? null : new Date(at).toISOString();
}

const pad = (n: number) => String(n).padStart(2, "0");
