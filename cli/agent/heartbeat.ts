// Heartbeat pacing: one every interval, plus one soon after a change (a job ended, work arrived, updates
// piled up) so the control plane learns about freed GPUs even when the live channel is down. Kicks are
// coalesced: never more than one heartbeat in flight, and at least `minGapMs` between two. The exchange
// itself (live channel or HTTP) is in channel-heartbeat.ts.

/** Updates per heartbeat; when a batch is full, the next heartbeat follows right away. */
export const MAX_BATCH = 256;

export interface HeartbeatPacerOptions {
  intervalMs: number;
  /** A function so the gap can depend on whether the live channel is up. */
  minGapMs: () => number;
  beat(): Promise<void>;
}

export class HeartbeatPacer {
  private kicked = false;
  private stopped = false;
  private lastAt = 0;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;

  constructor(private opts: HeartbeatPacerOptions) {}

  /** Starts the loop with an immediate first heartbeat. */
  start(): void {
    this.kicked = true;
    this.loop ??= this.run();
  }

  /** Asks for a heartbeat soon (coalesced with others). */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  setInterval(ms: number): void {
    this.opts = { ...this.opts, intervalMs: ms };
  }

  /** Stops the loop; resolves once an in-flight heartbeat finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const since = Date.now() - this.lastAt;
      const wait = this.kicked ? this.opts.minGapMs() - since : this.opts.intervalMs - since;
      if (wait > 0) {
        await this.sleep(wait);
        continue; // re-evaluate: a kick may have shortened the wait, or stop() was called
      }
      this.kicked = false;
      this.lastAt = Date.now();
      try {
        await this.opts.beat();
      } catch {
        // beat() handles its own errors; a throw must not end the loop.
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        clearTimeout(this.timer);
        this.wake = undefined;
        resolve();
      };
      this.timer = setTimeout(() => this.wake?.(), ms);
    });
  }
}
