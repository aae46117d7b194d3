// Queueing helpers of the scale model (bench/scale-sim.ts): coalescing channels and Zipf shares.

/** Messages/s of a coalescing channel: λ events/s, each message holds the channel for `hold` seconds. */
export const coalesced = (lambda: number, hold: number) =>
  lambda <= 0 ? 0 : hold <= 0 ? lambda : lambda / (lambda * hold + Math.exp(-lambda * hold));

/** Zipf(1) shares of `n` tenants, largest first. */
export function zipf(n: number, s = 1): number[] {
  const w = Array.from({ length: n }, (_, i) => 1 / (i + 1) ** s);
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / sum);
}

/**
 * Monte Carlo check of `coalesced`: Poisson events at λ/s; a message is sent when the channel is free and
 * something is pending, and holds the channel for `hold` s. Returns simulated and modelled messages/s.
 */
export function checkCoalescing(
  lambda: number,
  hold: number,
  seconds = 200,
  seed = 42,
): { simulated: number; model: number } {
  let x = seed;
  const rand = () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
  let t = 0;
  let busyUntil = 0;
  let pending = false;
  let sent = 0;
  while (t < seconds) {
    t += -Math.log(1 - rand()) / lambda;
    // The pending batch goes out each time the channel frees, until a hold passes with no new event.
    while (pending && t >= busyUntil) {
      sent++;
      busyUntil += hold;
      pending = false;
    }
    if (t >= busyUntil) {
      sent++;
      busyUntil = t + hold;
    } else pending = true;
  }
  return { simulated: sent / seconds, model: coalesced(lambda, hold) };
}
