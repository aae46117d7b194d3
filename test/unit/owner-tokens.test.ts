// The token filter in front of Postgres (join tokens) and the fleet shards (worker tokens): made-up tokens
// cost at most one read per owner per second, a token issued elsewhere works after the next read,
// revocation and expiry land.
import { describe, expect, it } from "vitest";
import { type OwnerToken, OwnerTokens } from "../../src/lib/owner-tokens.ts";

function setup(tokens: Record<string, OwnerToken[]>) {
  let now = 1_000_000;
  const reads: string[] = [];
  const pool = new OwnerTokens({
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
  });
  const load = async (poolId: string) => {
    reads.push(poolId);
    return [...(tokens[poolId] ?? [])];
  };
  return {
    pool,
    reads,
    load,
    advance: (ms: number) => {
      now += ms;
    },
    now: () => now,
  };
}

const tok = (id: string, expiresAt: number | null = null): OwnerToken => ({
  id,
  hash: `h-${id}`,
  expiresAt,
});

describe("OwnerTokens (join tokens per pool, a worker's token)", () => {
  it("a spray of made-up tokens for a real pool reads Postgres at most once a second", async () => {
    const t = setup({ gpu: [tok("jt1")] });
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const r = await t.pool.check("gpu", `forged-${i}`, t.load);
      if (!r.ok) refused++;
      t.advance(1); // 3,000 requests over ~3 s of their own, plus the waits
    }
    expect(refused).toBe(3000);
    const seconds = Math.ceil((t.now() - 1_000_000) / 1000);
    expect(t.reads.length).toBeLessThanOrEqual(seconds + 1);
    // The real token still passes, from the cache.
    const before = t.reads.length;
    expect(await t.pool.check("gpu", "h-jt1", t.load)).toMatchObject({ ok: true, tokenId: "jt1" });
    expect(t.reads.length).toBe(before);
  });

  it("a token created a moment ago elsewhere is accepted after the next read; a revoked one is refused", async () => {
    const tokens: Record<string, OwnerToken[]> = { gpu: [tok("old")] };
    const t = setup(tokens);
    expect((await t.pool.check("gpu", "h-old", t.load)).ok).toBe(true);
    tokens.gpu = [tok("old"), tok("new")]; // created in another isolate
    const r = await t.pool.check("gpu", "h-new", t.load);
    expect(r).toMatchObject({ ok: true, tokenId: "new" });
    expect(t.reads).toHaveLength(2);
    tokens.gpu = [tok("new")]; // "old" revoked elsewhere
    t.advance(1000);
    expect(await t.pool.check("gpu", "h-old", t.load)).toEqual({ ok: false });
  });

  it("revocation and creation in this isolate apply at once; an expired token is refused", async () => {
    const t = setup({ gpu: [tok("a"), tok("soon", 1_000_500)] });
    expect((await t.pool.check("gpu", "h-a", t.load)).ok).toBe(true);
    t.pool.remove("gpu", "a");
    t.pool.add("gpu", tok("b"));
    expect(await t.pool.check("gpu", "h-b", t.load)).toMatchObject({ ok: true, tokenId: "b" });
    expect((await t.pool.check("gpu", "h-soon", t.load)).ok).toBe(true);
    t.advance(600);
    expect((await t.pool.check("gpu", "h-soon", t.load)).ok).toBe(false);
  });

  it("Postgres unreachable is an error for the caller (a 503), not a refusal, and is not remembered", async () => {
    const t = setup({ gpu: [tok("g")] });
    let down = true;
    const load = async (p: string) => {
      if (down) throw new Error("connect ECONNREFUSED");
      return t.load(p);
    };
    await expect(t.pool.check("gpu", "h-g", load)).rejects.toThrow(/ECONNREFUSED/);
    down = false;
    expect((await t.pool.check("gpu", "h-g", load)).ok).toBe(true);
  });

  it("concurrent checks of one pool share one read", async () => {
    const t = setup({ gpu: [tok("g")] });
    const all = await Promise.all(Array.from({ length: 50 }, () => t.pool.check("gpu", "h-g", t.load)));
    expect(all.every((r) => r.ok)).toBe(true);
    expect(t.reads).toHaveLength(1);
  });
});
