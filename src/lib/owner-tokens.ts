// The valid tokens of each owner (a pool's active join tokens, a worker's token), as this isolate last
// read them: the filter in front of the check that a made-up token would otherwise cost.
// - Join tokens live in Postgres, and before this every request with a made-up `gjt_…` token cost a query
//   there: an unauthenticated way to load the database that every history read and admin call shares.
// - A worker's token lives in its fleet shard, and worker ids are not secret (tenants see them on their
//   jobs): a spray of made-up `gwk_<id>_…` tokens cost that shard one call each, on the object whose
//   heartbeats decide whether workers are alive.
// Now an owner's tokens are read at most once a second per isolate, whatever the traffic; a token not in
// the set waits for that next read (so a token issued a moment ago in another isolate still works, at most
// a second later). Owner ids nobody created are refused before this (the gateway's id sets and shard
// routing), so reads are bounded by the owners that exist.
// Plain TypeScript with the read injected, so it is unit-tested in Node.

export interface OwnerToken {
  id: string;
  hash: string;
  /** ms since the epoch; null = never expires. */
  expiresAt: number | null;
}

/** The owner's tokens that are neither revoked nor expired; a throw means "cannot tell" (passed on). */
export type OwnerTokensLoad = (owner: string) => Promise<OwnerToken[]>;

/** readAt: when the answer was read from Postgres (ms), for how long a caller may rely on it. */
export type TokenCheck = { ok: true; tokenId: string; readAt: number } | { ok: false };

export interface OwnerTokensOptions {
  now?: () => number;
  /** How long a read of an owner's tokens is used before the next (ms). */
  refreshMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

interface Entry {
  tokens: Map<string, OwnerToken>;
  readAt: number;
}

const MAX_OWNERS = 100_000;

export class OwnerTokens {
  private owners = new Map<string, Entry>();
  private reading = new Map<string, Promise<Entry>>();

  constructor(private opts: OwnerTokensOptions = {}) {}

  private now = () => (this.opts.now ?? Date.now)();
  private get refreshMs() {
    return this.opts.refreshMs ?? 1000;
  }

  /** Forget everything (tests: a fresh isolate). */
  clear(): void {
    this.owners.clear();
  }

  /** A token created here: usable at once in this isolate. */
  add(owner: string, token: OwnerToken): void {
    this.owners.get(owner)?.tokens.set(token.hash, token);
  }

  /** A token revoked here: gone at once in this isolate (others read it again within refreshMs). */
  remove(owner: string, tokenId: string): void {
    const tokens = this.owners.get(owner)?.tokens;
    for (const [hash, t] of tokens ?? []) if (t.id === tokenId) tokens!.delete(hash);
  }

  async check(owner: string, hash: string, load: OwnerTokensLoad): Promise<TokenCheck> {
    let entry = this.owners.get(owner);
    // A read older than refreshMs may miss a revocation or a new token: read again first.
    if (!entry || this.now() - entry.readAt >= this.refreshMs) entry = await this.read(owner, load, entry);
    let found = this.valid(entry, hash);
    let readAt = entry.readAt;
    if (!found) {
      // Not in a recent read: maybe created since. Wait for the next read (shared by every miss meanwhile).
      const wait = entry.readAt + this.refreshMs - this.now();
      if (wait > 0) await (this.opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))))(wait);
      const next = await this.read(owner, load, entry);
      found = this.valid(next, hash);
      readAt = next.readAt;
    }
    return found ? { ok: true, tokenId: found.id, readAt } : { ok: false };
  }

  private valid(entry: Entry, hash: string): OwnerToken | null {
    const t = entry.tokens.get(hash);
    return t && (t.expiresAt === null || t.expiresAt > this.now()) ? t : null;
  }

  /** One read per owner at a time (callers space them refreshMs apart). */
  private read(owner: string, load: OwnerTokensLoad, prev: Entry | undefined): Promise<Entry> {
    const current = this.owners.get(owner);
    if (current && current !== prev) return Promise.resolve(current); // someone read it meanwhile
    const pending = this.reading.get(owner);
    if (pending) return pending;
    const p = (async (): Promise<Entry> => {
      // A throw (Postgres unreachable) goes to the caller: "cannot tell" is a 503, not a refusal.
      const tokens = await load(owner);
      const entry: Entry = { tokens: new Map(tokens.map((t) => [t.hash, t])), readAt: this.now() };
      if (this.owners.size >= MAX_OWNERS) this.owners.clear();
      this.owners.set(owner, entry);
      return entry;
    })().finally(() => this.reading.delete(owner));
    this.reading.set(owner, p);
    return p;
  }
}
