// Exponentially decayed usage, kept exactly as a continuous integral so it needs no periodic sampling:
//   V(t) = ∫ rate(s) · 2^(−(t−s)/H) ds
// Between changes of `rate` the integral has a closed form, so we roll it forward only when the rate
// changes (a job starts or stops) or when somebody reads it. V/τ (τ = H/ln 2) is the exponentially
// weighted average allocation in GPUs: a tenant that has held R GPUs for a long time has V/τ → R.

export interface DecayedUsage {
  /** Decayed GPU-seconds at time `at`. */
  value: number;
  /** GPUs currently held (accrues usage continuously). */
  rate: number;
  at: number; // ms
}

export const DEFAULT_HALF_LIFE_SECONDS = 3600;

export function validateHalfLife(seconds: number): number {
  // A zero half-life silently disables fairness (Kueue #11134): refuse it instead.
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new RangeError(`usage half-life must be a positive number of seconds, got ${seconds}`);
  }
  return seconds;
}

export const tauSeconds = (halfLifeSeconds: number) => halfLifeSeconds / Math.LN2;

/** The usage at `now`, including what the current rate has accrued since `u.at`. */
export function rollForward(u: DecayedUsage, now: number, halfLifeSeconds: number): DecayedUsage {
  const dt = Math.max(0, (now - u.at) / 1000);
  if (dt === 0) return u;
  const tau = tauSeconds(halfLifeSeconds);
  const k = Math.exp(-dt / tau);
  return { value: u.value * k + u.rate * tau * (1 - k), rate: u.rate, at: Math.max(now, u.at) };
}

export function withRate(u: DecayedUsage, now: number, halfLifeSeconds: number, rate: number): DecayedUsage {
  const r = rollForward(u, now, halfLifeSeconds);
  return { ...r, rate: Math.max(0, rate) };
}

/** Exponentially weighted average GPUs in use over the recent past (same unit as an allocation). */
export function averageGpus(u: DecayedUsage, now: number, halfLifeSeconds: number): number {
  return rollForward(u, now, halfLifeSeconds).value / tauSeconds(halfLifeSeconds);
}

export const ZERO_USAGE = (now: number): DecayedUsage => ({ value: 0, rate: 0, at: now });
