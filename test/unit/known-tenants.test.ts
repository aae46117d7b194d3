// The gateway's filter of tenant ids (src/lib/known-tenants.ts): forged owner ids never reach a tenant
// object, and the lookups that decide it are few.
import { describe, expect, it } from "vitest";
import { KnownTenants } from "../../src/lib/known-tenants.ts";

function setup(existing: string[], opts: { fail?: boolean; perSecond?: number } = {}) {
  let now = 1_000_000;
  const lookups: string[] = [];
  const lookup = async (id: string) => {
    lookups.push(id);
    if (opts.fail) throw new Error("Postgres unreachable");
    return existing.includes(id);
  };
  const known = new KnownTenants({
    now: () => now,
    ...(opts.perSecond ? { lookupsPerSecond: opts.perSecond } : {}),
  });
  const k = { exists: (id: string) => known.exists(id, lookup), add: (id: string) => known.add(id) };
  return { k, lookups, advance: (ms: number) => (now += ms) };
}

describe("known tenants", () => {
  it("look an id up once; after that, existing ids need no lookup", async () => {
    const { k, lookups } = setup(["acme"]);
    expect(await k.exists("acme")).toBe("yes");
    expect(await k.exists("acme")).toBe("yes");
    expect(lookups).toEqual(["acme"]);
  });

  it("remember an absent id for 5 s, then look again (it may have been created elsewhere)", async () => {
    const { k, lookups, advance } = setup([]);
    expect(await k.exists("ghost")).toBe("no");
    expect(await k.exists("ghost")).toBe("no");
    expect(lookups).toEqual(["ghost"]);
    advance(6_000);
    expect(await k.exists("ghost")).toBe("no");
    expect(lookups).toEqual(["ghost", "ghost"]);
  });

  it("know a tenant created in this isolate without a lookup, even one just found absent", async () => {
    const { k, lookups } = setup([]);
    expect(await k.exists("new")).toBe("no");
    k.add("new");
    expect(await k.exists("new")).toBe("yes");
    expect(lookups).toEqual(["new"]);
  });

  it("share one lookup between concurrent requests for the same id", async () => {
    const { k, lookups } = setup(["acme"]);
    const all = await Promise.all([k.exists("acme"), k.exists("acme"), k.exists("acme")]);
    expect(all).toEqual(["yes", "yes", "yes"]);
    expect(lookups).toHaveLength(1);
  });

  it("cap lookups of unknown ids per second: a spray of forged owners costs at most that many", async () => {
    const { k, lookups, advance } = setup(["acme"], { perSecond: 5 });
    expect(await k.exists("acme")).toBe("yes");
    advance(1000);
    lookups.length = 0;
    const forged = await Promise.all(Array.from({ length: 50 }, (_, i) => k.exists(`forged-${i}`)));
    expect(forged.filter((r) => r === "no")).toHaveLength(5);
    expect(forged.filter((r) => r === "busy")).toHaveLength(45);
    expect(lookups).toHaveLength(5);
    // A known tenant is never affected; an unknown one is looked up again the next second.
    expect(await k.exists("acme")).toBe("yes");
    advance(1000);
    expect(await k.exists("forged-49")).toBe("no");
    expect(lookups).toHaveLength(6);
  });

  it("let the tenant object decide when the lookup fails (Postgres unreachable), without remembering", async () => {
    const { k, lookups } = setup([], { fail: true });
    expect(await k.exists("acme")).toBe("yes");
    expect(await k.exists("acme")).toBe("yes");
    expect(lookups).toHaveLength(2);
  });
});
