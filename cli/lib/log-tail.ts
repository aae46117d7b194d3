// `logs --follow` over a server that keeps only the last 64 KiB of a job's output: each poll returns a
// window that may have slid past text we printed. What is new is the part of the current window after the
// longest overlap between the end of what we saw and the start of the window.

export interface TailDelta {
  /** Text to print. */
  text: string;
  /** True when the window slid further than the old one reached: some output in between was lost. */
  gap: boolean;
}

/**
 * The new output in `current` given the previous window `previous` of the same attempt. Repetitive
 * output (the same line over and over) is ambiguous in a sliding window; the longest overlap is taken,
 * which may under-print repeated lines but never prints a line twice.
 */
export function newOutput(previous: string, current: string): TailDelta {
  if (previous === "") return { text: current, gap: false };
  if (current.startsWith(previous)) return { text: current.slice(previous.length), gap: false };
  const overlap = longestSuffixPrefix(previous, current);
  return { text: current.slice(overlap), gap: overlap === 0 && current !== "" };
}

/**
 * Length of the longest suffix of `a` that is a prefix of `b`, in linear time (the KMP failure function
 * of b, then matching a against it), so a 64 KiB window costs microseconds, not seconds.
 */
export function longestSuffixPrefix(a: string, b: string): number {
  if (a === "" || b === "") return 0;
  const fail = new Int32Array(b.length);
  for (let i = 1, k = 0; i < b.length; i++) {
    while (k > 0 && b[i] !== b[k]) k = fail[k - 1]!;
    if (b[i] === b[k]) k++;
    fail[i] = k;
  }
  // Only the last b.length characters of a can overlap.
  let k = 0;
  for (let i = Math.max(0, a.length - b.length); i < a.length; i++) {
    while (k > 0 && (k === b.length || a[i] !== b[k])) k = fail[k - 1]!;
    if (a[i] === b[k]) k++;
  }
  return k;
}
