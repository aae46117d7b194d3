// The active join tokens of each pool, as this isolate last read them: the filter in front of Postgres for
// `POST /v1/workers/register`. A join token is checked against Postgres, and before this every request
// with a made-up `gjt_…` token (any pool id, any secret) cost a query there: an unauthenticated way to load
// the database that every history read and admin call shares. Now a pool's tokens are read at most once a
// second per isolate, whatever the traffic; a token not in the set waits for that next read (so a token
// created a moment ago in another isolate still works, at most a second later). Pool ids nobody created
// are refused before this (the gateway's known-pools filter), so reads are bounded by the pools that exist.
// Plain TypeScript with the read injected, so it is unit-tested in Node.

export interface ActiveJoinToken {
  id: string;
  hash: string;
  /** ms since the epoch; null = never expires. */
  expiresAt: number | null;
}

/** The pool's join tokens that are neither revoked nor expired; a throw means "cannot tell" (passed on). */
export type PoolTokensLoad = (poolId: string) => Promise<ActiveJoinToken[]>;

/** readAt: when the answer was read from Postgres (ms), for how long a caller may rely on it. */
export type JoinCheck = { ok: true; tokenId: string; readAt: number } | { ok: false };

export interface PoolTokensOptions {
  now?: () => number;
  /** How long a read of a pool's tokens is used before the next (ms). */
  refreshMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

interface Entry {
  tokens: Map<string, ActiveJoinToken>;
  readAt: number;
}

const MAX_POOLS = 10_000;

export class PoolTokens {
  private pools = new Map<string, Entry>();
  private reading = new Map<string, Promise<Entry>>();

  constructor(private opts: PoolTokensOptions = {}) {}

  private now = () => (this.opts.now ?? Date.now)();
  private get refreshMs() {
    return this.opts.refreshMs ?? 1000;
  }

  /** Forget everything (tests: a fresh isolate). */
  clear(): void {
    this.pools.clear();
  }

  /** A token created here: usable at once in this isolate. */
  add(poolId: string, token: ActiveJoinToken): void {
    this.pools.get(poolId)?.tokens.set(token.hash, token);
  }

  /** A token revoked here: gone at once in this isolate (others read it again within refreshMs). */
  remove(poolId: string, tokenId: string): void {
    const tokens = this.pools.get(poolId)?.tokens;
    for (const [hash, t] of tokens ?? []) if (t.id === tokenId) tokens!.delete(hash);
  }

  async check(poolId: string, hash: string, load: PoolTokensLoad): Promise<JoinCheck> {
    let entry = this.pools.get(poolId);
    // A read older than refreshMs may miss a revocation or a new token: read again first.
    if (!entry || this.now() - entry.readAt >= this.refreshMs) entry = await this.read(poolId, load, entry);
    let found = this.valid(entry, hash);
    let readAt = entry.readAt;
    if (!found) {
      // Not in a recent read: maybe created since. Wait for the next read (shared by every miss meanwhile).
      const wait = entry.readAt + this.refreshMs - this.now();
      if (wait > 0) await (this.opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))))(wait);
      const next = await this.read(poolId, load, entry);
      found = this.valid(next, hash);
      readAt = next.readAt;
    }
    return found ? { ok: true, tokenId: found.id, readAt } : { ok: false };
  }

  private valid(entry: Entry, hash: string): ActiveJoinToken | null {
    const t = entry.tokens.get(hash);
    return t && (t.expiresAt === null || t.expiresAt > this.now()) ? t : null;
  }

  /** One read per pool at a time (callers space them refreshMs apart). */
  private read(poolId: string, load: PoolTokensLoad, prev: Entry | undefined): Promise<Entry> {
    const current = this.pools.get(poolId);
    if (current && current !== prev) return Promise.resolve(current); // someone read it meanwhile
    const pending = this.reading.get(poolId);
    if (pending) return pending;
    const p = (async (): Promise<Entry> => {
      // A throw (Postgres unreachable) goes to the caller: "cannot tell" is a 503, not a refusal.
      const tokens = await load(poolId);
      const entry: Entry = { tokens: new Map(tokens.map((t) => [t.hash, t])), readAt: this.now() };
      if (this.pools.size >= MAX_POOLS) this.pools.clear();
      this.pools.set(poolId, entry);
      return entry;
    })().finally(() => this.reading.delete(poolId));
    this.reading.set(poolId, p);
    return p;
  }
}
