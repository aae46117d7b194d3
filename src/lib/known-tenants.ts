// Which tenant ids exist, as far as this isolate knows: a filter in front of the tenant objects. A tenant
// API key names its tenant, and checking it means calling that tenant's Durable Object — which, for an id
// nobody created, would come into existence (schema and all) and ask Postgres for a catalog it will not
// find. So the isolate holds the set of tenant ids: the first unknown id reads them all, later ones read
// only what was created since (with an overlap, for transactions that committed late), at most once a
// second. An id missing from the set waits for a read that started after it arrived, so a tenant created a
// moment ago in another isolate is found (a second later at worst) and a spray of forged ids costs one
// small read a second.
//
// This replaced a per-id lookup capped at 20 a second per isolate, which refused (401) the keys of every
// tenant beyond the first 20 that a fresh isolate saw in a second: with 1,000 active tenants, most of
// them for the better part of a minute after each isolate start.
// Plain TypeScript with the read injected, so it is unit-tested in Node.

export type Existence = "yes" | "no";

/** Tenants created at or after `since` (ms since the epoch); a throw means "cannot tell". */
export type TenantsSince = (since: number) => Promise<{ id: string; createdAt: number }[]>;

export interface KnownTenantsOptions {
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** At most one read per this many ms. */
  refreshMs?: number;
}

/** Reads overlap by this much: a tenant whose transaction began earlier but committed after a read. */
export const READ_OVERLAP_MS = 60_000;

export class KnownTenants {
  private known = new Set<string>();
  /** Newest creation time seen; null before the first (full) read. */
  private newest: number | null = null;
  private lastStart = Number.NEGATIVE_INFINITY;
  private reading: { start: number; done: Promise<boolean> } | null = null;

  constructor(private opts: KnownTenantsOptions = {}) {}

  private now = () => (this.opts.now ?? Date.now)();

  /** Forget everything (tests: a fresh isolate). */
  clear(): void {
    this.known.clear();
    this.newest = null;
    this.lastStart = Number.NEGATIVE_INFINITY;
  }

  /** A tenant created (or seen) here: its keys need no read. */
  add(id: string): void {
    this.known.add(id);
  }

  /**
   * "yes" when the tenant exists or existence cannot be told (Postgres unreachable: the tenant's object
   * decides, as before); "no" when a read that started after this call does not list it.
   */
  exists(id: string, load: TenantsSince): Promise<Existence> | Existence {
    if (this.known.has(id)) return "yes";
    return this.readSince(this.now(), load).then((ok) => (!ok || this.known.has(id) ? "yes" : "no"));
  }

  /** Resolves once a read that started at or after t0 has finished (false: it failed). */
  private async readSince(t0: number, load: TenantsSince): Promise<boolean> {
    for (;;) {
      const r = this.reading;
      if (r && r.start >= t0) return r.done;
      if (r) {
        await r.done; // started before we came: wait for it, then for the next one
        continue;
      }
      const wait = this.lastStart + (this.opts.refreshMs ?? 1000) - this.now();
      if (wait > 0) {
        await (this.opts.sleep ?? ((ms) => new Promise((res) => setTimeout(res, ms))))(wait);
        continue; // someone else may have started the read meanwhile
      }
      return this.startRead(load);
    }
  }

  private startRead(load: TenantsSince): Promise<boolean> {
    const start = this.now();
    this.lastStart = start;
    const since = this.newest === null ? 0 : this.newest - READ_OVERLAP_MS;
    // Started on a later tick, so `reading` is set before it can be cleared.
    const done = Promise.resolve().then(async () => {
      try {
        for (const t of await load(since)) {
          this.known.add(t.id);
          if (this.newest === null || t.createdAt > this.newest) this.newest = t.createdAt;
        }
        this.newest ??= start; // no tenant yet: later reads start from here
        return true;
      } catch {
        return false;
      } finally {
        this.reading = null;
      }
    });
    this.reading = { start, done };
    return done;
  }
}
