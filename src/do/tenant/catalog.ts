// The slice of the Postgres catalog a tenant's hot paths need — key hashes, policies, quota, limits —
// cached inside the tenant's Durable Object. Pushed by the admin routes on every change and re-pushed by
// the cron tick when a push was missed, so the submit path never waits on Postgres.

import { timingSafeEqualHex } from "../../domain/ids.ts";
import { type CompiledPolicy, compilePolicy, type PolicyDef } from "../../domain/policy.ts";
import { normalizeQuota, type QuotaSpec } from "../../domain/quota.ts";
import { all, type Meta } from "../../lib/sql.ts";

export type Role = "admin" | "member";

export interface RateLimits {
  submitPerSecond?: number | null;
  submitBurst?: number | null;
  readPerSecond?: number | null;
  readBurst?: number | null;
}

export interface TenantCatalog {
  rev: number;
  tenant: { id: string; name: string; weight: number };
  keys: { hash: string; id: string; name: string; role: Role }[];
  policies: PolicyDef[];
  quota: QuotaSpec | null;
  limits: RateLimits | null;
}

export interface KeyPrincipal {
  tenantId: string;
  keyId: string;
  name: string;
  role: Role;
}

export class CatalogCache {
  private compiled: CompiledPolicy[] | null = null;
  /** Key hash → principal (or null), per catalog revision: every submit re-checks its key here. */
  private principals = new Map<string, KeyPrincipal | null>();
  private cache: Omit<TenantCatalog, "keys"> | null = null;

  constructor(
    private sql: SqlStorage,
    private meta: Meta,
  ) {}

  get loaded(): boolean {
    return this.meta.get("catalog") !== null;
  }

  get rev(): number {
    return this.data()?.rev ?? -1;
  }

  /** Replace the cached catalog; older revisions are ignored (pushes can race the cron re-push). */
  apply(c: TenantCatalog): boolean {
    if (this.loaded && c.rev < this.rev) return false;
    this.sql.exec("DELETE FROM keys");
    for (const k of c.keys) {
      this.sql.exec(
        "INSERT INTO keys (hash, id, name, role) VALUES (?, ?, ?, ?)",
        k.hash,
        k.id,
        k.name,
        k.role,
      );
    }
    const { keys: _keys, ...rest } = c;
    const stored = { ...rest, quota: c.quota ? normalizeQuota(c.quota) : null };
    this.meta.set("catalog", JSON.stringify(stored));
    this.meta.set("tenant_id", c.tenant.id);
    this.cache = stored;
    this.compiled = null;
    this.principals.clear();
    return true;
  }

  private data(): Omit<TenantCatalog, "keys"> | null {
    if (!this.cache) this.cache = this.meta.json<Omit<TenantCatalog, "keys">>("catalog");
    return this.cache;
  }

  tenant(): TenantCatalog["tenant"] | null {
    return this.data()?.tenant ?? null;
  }

  quota(): QuotaSpec | null {
    return this.data()?.quota ?? null;
  }

  limits(): RateLimits | null {
    return this.data()?.limits ?? null;
  }

  weight(): number {
    return this.data()?.tenant.weight ?? 1;
  }

  policyDefs(): PolicyDef[] {
    return this.data()?.policies ?? [];
  }

  /** Compiled once per catalog revision and kept in memory. */
  policies(): CompiledPolicy[] {
    if (!this.compiled) {
      this.compiled = [];
      for (const def of this.policyDefs()) {
        const r = compilePolicy(def);
        // Policies were validated when written; one that no longer compiles is skipped, not fatal.
        if (r.ok) this.compiled.push(r.policy);
      }
    }
    return this.compiled;
  }

  /** Constant-time check of a key hash against the tenant's live keys. */
  principal(hash: string): KeyPrincipal | null {
    const known = this.principals.get(hash);
    if (known !== undefined) return known;
    const p = this.lookup(hash);
    if (this.principals.size > 10_000) this.principals.clear();
    this.principals.set(hash, p);
    return p;
  }

  private lookup(hash: string): KeyPrincipal | null {
    const t = this.tenant();
    if (!t) return null;
    const rows = all<{ hash: string; id: string; name: string; role: string }>(
      this.sql,
      "SELECT hash, id, name, role FROM keys WHERE hash = ?",
      hash,
    );
    const k = rows[0];
    if (!k || !timingSafeEqualHex(k.hash, hash)) return null;
    return { tenantId: t.id, keyId: k.id, name: k.name, role: k.role as Role };
  }
}
