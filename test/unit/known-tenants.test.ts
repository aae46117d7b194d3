// The gateway's filter of tenant ids (src/lib/known-tenants.ts): forged owner ids never reach a tenant
// object, the reads that decide it are few, and no real tenant is refused because others were looked up.
import { describe, expect, it } from "vitest";
import { KnownTenants, READ_OVERLAP_MS } from "../../src/lib/known-tenants.ts";

function setup(existing: { id: string; createdAt: number }[], opts: { fail?: () => boolean } = {}) {
  let now = 1_000_000;
  const reads: number[] = [];
  const load = async (since: number) => {
    reads.push(since);
    await Promise.resolve();
    if (opts.fail?.()) throw new Error("Postgres unreachable");
    return existing.filter((t) => t.createdAt >= since);
  };
  const known = new KnownTenants({
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
  });
  return {
    exists: (id: string) => known.exists(id, load),
    add: (id: string) => known.add(id),
    reads,
    existing,
    advance: (ms: number) => {
      now += ms;
    },
    now: () => now,
  };
}

const tenant = (id: string, createdAt = 500_000) => ({ id, createdAt });

describe("known tenants", () => {
  it("a fresh isolate knows 1,000 tenants after one read, and refuses none of them", async () => {
    const all = Array.from({ length: 1000 }, (_, i) => tenant(`t${i}`, 500_000 + i));
    const k = setup(all);
    const answers = await Promise.all(all.map((t) => k.exists(t.id)));
    expect(answers.every((a) => a === "yes")).toBe(true);
    expect(k.reads).toEqual([0]); // one full read
    expect(await k.exists("t999")).toBe("yes");
    expect(k.reads).toHaveLength(1);
  });

  it("a spray of forged ids costs one small read a second, and each is refused", async () => {
    const k = setup([tenant("acme")]);
    expect(await k.exists("acme")).toBe("yes");
    const start = k.now();
    const forged = [];
    for (let i = 0; i < 20; i++) {
      forged.push(...(await Promise.all(Array.from({ length: 50 }, (_, j) => k.exists(`forged-${i}-${j}`)))));
    }
    expect(forged.every((a) => a === "no")).toBe(true);
    const seconds = (k.now() - start) / 1000;
    expect(k.reads.length - 1).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    // Later reads only ask for what was created since the newest tenant seen (minus the overlap).
    expect(k.reads.slice(1).every((s) => s === 500_000 - READ_OVERLAP_MS)).toBe(true);
  });

  it("a tenant created elsewhere a moment ago is found by the next read", async () => {
    const k = setup([tenant("acme")]);
    expect(await k.exists("acme")).toBe("yes");
    k.existing.push(tenant("newco", k.now()));
    expect(await k.exists("newco")).toBe("yes"); // waited for a read that started after the question
    expect(k.reads).toHaveLength(2);
  });

  it("a question asked while a read is under way waits for the next read, not that one", async () => {
    const k = setup([tenant("acme")]);
    const first = k.exists("ghost"); // starts the full read
    k.existing.push(tenant("late", 999_999)); // committed after that read's snapshot began
    const second = k.exists("late");
    expect(await first).toBe("no");
    expect(await second).toBe("yes");
  });

  it("know a tenant created in this isolate without a read", async () => {
    const k = setup([]);
    k.add("new");
    expect(await k.exists("new")).toBe("yes");
    expect(k.reads).toHaveLength(0);
  });

  it("let the tenant object decide when Postgres is unreachable, and read again next time", async () => {
    let down = true;
    const k = setup([tenant("acme")], { fail: () => down });
    expect(await k.exists("acme")).toBe("yes");
    expect(await k.exists("ghost")).toBe("yes");
    down = false;
    expect(await k.exists("ghost")).toBe("no");
    expect(await k.exists("acme")).toBe("yes");
    expect(k.reads[k.reads.length - 1]).toBe(0); // nothing was read before: still a full read
  });
});
