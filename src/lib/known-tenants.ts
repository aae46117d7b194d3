// Which tenant ids exist, as far as this isolate knows: a filter in front of the tenant objects. A tenant
// API key names its tenant, and checking it means calling that tenant's Durable Object — which, for an id
// nobody created, would come into existence (schema and all) and ask Postgres for a catalog it will not
// find. Without this filter every forged token with a fresh owner id cost a new persisted object and a
// Postgres query. Ids seen to exist are remembered; an unknown id is looked up (at most LOOKUPS_PER_SECOND
// of them per isolate, each remembered as absent for a while), and a tenant created here is added at once.
// Plain TypeScript with the lookup injected, so it is unit-tested in Node.

export type Existence = "yes" | "no" | "busy";

/** Whether the tenant exists (Postgres); a throw means "cannot tell". */
export type TenantLookup = (id: string) => Promise<boolean>;

export interface KnownTenantsOptions {
  now?: () => number;
  lookupsPerSecond?: number;
}

const ABSENT_MS = 5_000;
const MAX_KNOWN = 100_000;
const MAX_ABSENT = 10_000;

export class KnownTenants {
  private known = new Set<string>();
  private absent = new Map<string, number>();
  private inflight = new Map<string, Promise<Existence>>();
  private second = 0;
  private used = 0;

  constructor(private opts: KnownTenantsOptions = {}) {}

  /** Forget everything (tests: a fresh isolate). */
  clear(): void {
    this.known.clear();
    this.absent.clear();
  }

  /** A tenant created (or seen) here: its keys need no lookup. */
  add(id: string): void {
    if (this.known.size >= MAX_KNOWN) this.known.clear();
    this.known.add(id);
    this.absent.delete(id);
  }

  /**
   * "yes" when the tenant exists or existence cannot be checked (Postgres unreachable: the tenant's object
   * decides, as before); "no" when it does not; "busy" when too many unknown ids were looked up this second.
   */
  exists(id: string, lookup: TenantLookup): Promise<Existence> | Existence {
    if (this.known.has(id)) return "yes";
    const now = (this.opts.now ?? Date.now)();
    const until = this.absent.get(id);
    if (until !== undefined) {
      if (until > now) return "no";
      this.absent.delete(id);
    }
    const pending = this.inflight.get(id);
    if (pending) return pending;
    if (!this.takeLookup(now)) return "busy";
    const p = this.check(id, now, lookup).finally(() => this.inflight.delete(id));
    this.inflight.set(id, p);
    return p;
  }

  private async check(id: string, now: number, lookup: TenantLookup): Promise<Existence> {
    let found: boolean;
    try {
      found = await lookup(id);
    } catch {
      return "yes";
    }
    if (found) {
      this.add(id);
      return "yes";
    }
    if (this.absent.size >= MAX_ABSENT) this.absent.clear();
    this.absent.set(id, now + ABSENT_MS);
    return "no";
  }

  private takeLookup(now: number): boolean {
    const second = Math.floor(now / 1000);
    if (second !== this.second) {
      this.second = second;
      this.used = 0;
    }
    if (this.used >= (this.opts.lookupsPerSecond ?? 20)) return false;
    this.used++;
    return true;
  }
}
