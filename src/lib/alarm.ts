// One alarm per object = the minimum of everything that is due (PRODUCT/DEVELOPERS style rule). Callers
// propose times; the planner only moves the alarm earlier, and the alarm handler recomputes it at the end.
export class AlarmPlanner {
  private scheduled: number | null = null;
  private known = false;

  constructor(private storage: DurableObjectStorage) {}

  async init(): Promise<void> {
    this.scheduled = await this.storage.getAlarm();
    this.known = true;
  }

  /** When the alarm is set to fire (null: none, or not known yet). */
  get next(): number | null {
    return this.known ? this.scheduled : null;
  }

  /** Ensure the alarm fires no later than `at`. */
  async atMost(at: number): Promise<void> {
    if (!this.known) await this.init();
    if (this.scheduled !== null && this.scheduled <= at) return;
    this.scheduled = at;
    await this.storage.setAlarm(at);
  }

  /** Called from alarm(): the alarm that fired is gone; set the next one (or none). */
  async reset(next: number | null): Promise<void> {
    if (next === null) {
      this.scheduled = null;
      await this.storage.deleteAlarm();
      return;
    }
    this.scheduled = next;
    await this.storage.setAlarm(next);
  }

  /** Called first thing in alarm(): forgets the fired alarm and returns when it was due (if known). */
  fired(): number | null {
    const due = this.scheduled;
    this.scheduled = null;
    return due;
  }
}

export function minTime(...ts: (number | null | undefined)[]): number | null {
  let m: number | null = null;
  for (const t of ts) if (t != null && (m === null || t < m)) m = t;
  return m;
}
