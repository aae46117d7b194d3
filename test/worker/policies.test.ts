// Policies (CEL) end to end through the Worker: compile errors, deny, warn, versions, dry run = enforcement.
import { describe, expect, it } from "vitest";
import { ADMIN, api, createTenant, expectProblem, submit } from "./helpers.ts";

interface PolicyBody {
  id: string;
  version: number;
  scope: string;
}

describe("policies", () => {
  it("deny policy on job.gpus > 8 rejects with its message; 8 GPUs pass", async () => {
    const t = await createTenant();
    const p = await api<PolicyBody>("POST", "/v1/policies", {
      token: t.adminKey,
      body: {
        name: "max-8-gpus",
        expression: "job.gpus > 8",
        effect: "deny",
        message: "at most 8 GPUs per job",
      },
    });
    expect(p.status, p.text).toBe(201);
    expect(p.body).toMatchObject({ version: 1, scope: "tenant" });
    const denied = await submit(t.memberKey, { gpus: 9 });
    expectProblem(denied, 403, "PolicyDenied");
    expect((denied.body as unknown as { detail: string }).detail).toContain("at most 8 GPUs per job");
    const decisions = (denied.body as unknown as { decisions: { name: string; matched: boolean }[] })
      .decisions;
    expect(decisions.find((d) => d.name === "max-8-gpus")?.matched).toBe(true);
    const ok = await submit(t.memberKey, { gpus: 8, gpuType: "NOWHERE" });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.body.policyVersions).toEqual([{ id: p.body.id, version: 1 }]);
  });

  it("a denied submission lists every denying message and creates nothing", async () => {
    const t = await createTenant();
    for (const [name, expression, message] of [
      ["no-low", 'job.priority == "low"', "low priority is not allowed here"],
      ["need-team", '!("team" in job.labels)', "label team is required"],
    ]) {
      const r = await api("POST", "/v1/policies", {
        token: t.adminKey,
        body: { name, expression, effect: "deny", message },
      });
      expect(r.status, r.text).toBe(201);
    }
    const denied = await submit(t.memberKey, { priority: "low" });
    expectProblem(denied, 403, "PolicyDenied");
    const detail = (denied.body as unknown as { detail: string }).detail;
    expect(detail).toContain("low priority is not allowed here");
    expect(detail).toContain("label team is required");
    const q = await api<{ counts: { byState: Record<string, number> } }>("GET", "/v1/queue", {
      token: t.memberKey,
    });
    expect(q.body.counts.byState.queued).toBe(0);
  });

  it("warn policy admits and records the warning on the job", async () => {
    const t = await createTenant();
    const p = await api<PolicyBody>("POST", "/v1/policies", {
      token: t.adminKey,
      body: {
        name: "long-jobs",
        expression: "job.maxRuntimeSeconds == 0 || job.maxRuntimeSeconds > 3600",
        effect: "warn",
        messageExpression: '"job " + job.name + " may run longer than an hour"',
      },
    });
    expect(p.status, p.text).toBe(201);
    const s = await submit(t.memberKey, { name: "train", gpuType: "NOWHERE" });
    expect(s.status, s.text).toBe(201);
    expect(s.body.warnings).toEqual([
      { policyId: p.body.id, name: "long-jobs", message: "job train may run longer than an hour" },
    ]);
    const shown = await api<{ warnings: unknown[] }>("GET", `/v1/jobs/${s.body.id}`, { token: t.memberKey });
    expect(shown.body.warnings).toHaveLength(1);
  });

  it("bad CEL is a 400 naming the position; nothing is stored", async () => {
    const t = await createTenant();
    const r = await api("POST", "/v1/policies", {
      token: t.adminKey,
      body: { name: "broken", expression: "job.gpus > ", effect: "deny" },
    });
    expectProblem(r, 400, "InvalidExpression");
    const errors = (
      r.body as unknown as {
        errors: { path: string; message: string; position: { line: number; column: number } }[];
      }
    ).errors;
    expect(errors[0]!.path).toBe("expression");
    expect(errors[0]!.message).toMatch(/line 1, column \d+/);
    expect(errors[0]!.position.line).toBe(1);
    const nonBool = await api("POST", "/v1/policies", {
      token: t.adminKey,
      body: { name: "nb", expression: "job.gpus + 1", effect: "deny" },
    });
    expectProblem(nonBool, 400, "InvalidExpression");
    const unknown = await api("POST", "/v1/policies", {
      token: t.adminKey,
      body: { name: "unk", expression: "user.age > 1", effect: "deny" },
    });
    expectProblem(unknown, 400, "InvalidExpression");
    const list = await api<{ items: unknown[] }>("GET", "/v1/policies", { token: t.adminKey });
    expect(list.body.items.filter((p) => (p as { scope: string }).scope === "tenant")).toHaveLength(0);
  });

  it("dry run returns every decision and matches enforcement", async () => {
    const t = await createTenant();
    await api("POST", "/v1/policies", {
      token: t.adminKey,
      body: { name: "big", expression: "job.gpus >= 4", effect: "deny", message: "too big" },
    });
    await api("POST", "/v1/policies", {
      token: t.adminKey,
      body: {
        name: "h100",
        expression: 'job.gpuType == "H100"',
        effect: "warn",
        message: "H100s are scarce",
      },
    });
    for (const job of [
      { name: "a", command: ["true"], gpus: 4, gpuType: "H100" },
      { name: "b", command: ["true"], gpus: 2, gpuType: "H100" },
      { name: "c", command: ["true"], gpus: 1 },
    ]) {
      const dry = await api<{ allowed: boolean; decisions: { name: string; matched: boolean }[] }>(
        "POST",
        "/v1/policies/evaluate",
        { token: t.memberKey, body: { job } },
      );
      expect(dry.status, dry.text).toBe(200);
      expect(dry.body.decisions.map((d) => d.name).sort()).toEqual(["big", "h100"]);
      const real = await submit(t.memberKey, job);
      expect(
        real.status === 201,
        `${job.name}: dry run said ${dry.body.allowed}, submit said ${real.status}`,
      ).toBe(dry.body.allowed);
    }
  });

  it("a change is a new version and applies to the very next submission", async () => {
    const t = await createTenant();
    const p = await api<PolicyBody>("POST", "/v1/policies", {
      token: t.adminKey,
      body: { name: "cap", expression: "job.gpus > 4", effect: "deny", message: "cap 4" },
    });
    expect((await submit(t.memberKey, { gpus: 3, gpuType: "NOWHERE" })).status).toBe(201);
    const put = await api<PolicyBody>("PUT", `/v1/policies/${p.body.id}`, {
      token: t.adminKey,
      body: { name: "cap", expression: "job.gpus > 2", effect: "deny", message: "cap 2" },
    });
    expect(put.status, put.text).toBe(200);
    expect(put.body.version).toBe(2);
    const denied = await submit(t.memberKey, { gpus: 3 });
    expectProblem(denied, 403, "PolicyDenied");
    const versions = await api<{ items: { version: number; expression: string }[] }>(
      "GET",
      `/v1/policies/${p.body.id}/versions`,
      { token: t.adminKey },
    );
    expect(versions.body.items.map((v) => v.version)).toEqual([1, 2]);
    const del = await api("DELETE", `/v1/policies/${p.body.id}`, { token: t.adminKey });
    expect(del.status).toBe(204);
    expect((await submit(t.memberKey, { gpus: 3, gpuType: "NOWHERE" })).status).toBe(201);
  });

  it("global policies need the admin token and apply to every tenant", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const forbidden = await api("POST", "/v1/policies", {
      token: a.adminKey,
      body: { name: "g", expression: "false", effect: "deny", scope: "global" },
    });
    expectProblem(forbidden, 403, "Forbidden");
    const member = await api("POST", "/v1/policies", {
      token: a.memberKey,
      body: { name: "m", expression: "false", effect: "deny" },
    });
    expectProblem(member, 403, "Forbidden");
    const g = await api<PolicyBody>("POST", "/v1/policies", {
      token: ADMIN,
      body: {
        name: "no-forbidden-label",
        expression: '"forbidden" in job.labels',
        effect: "deny",
        message: "nope",
      },
    });
    expect(g.status, g.text).toBe(201);
    expect(g.body.scope).toBe("global");
    for (const t of [a, b]) {
      expectProblem(await submit(t.memberKey, { labels: { forbidden: "1" } }), 403, "PolicyDenied");
    }
    // Tenants see global policies but cannot change them.
    const put = await api("PUT", `/v1/policies/${g.body.id}`, {
      token: a.adminKey,
      body: { name: "x", expression: "false", effect: "deny" },
    });
    expectProblem(put, 403, "Forbidden");
    // Another tenant's policy is not found.
    const own = await api<PolicyBody>("POST", "/v1/policies", {
      token: a.adminKey,
      body: { name: "a-only", expression: "false", effect: "warn" },
    });
    expectProblem(await api("GET", `/v1/policies/${own.body.id}`, { token: b.adminKey }), 404, "NotFound");
    const gone = await api("DELETE", `/v1/policies/${g.body.id}`, { token: ADMIN });
    expect(gone.status).toBe(204);
  });

  it("whoami names the caller without revealing anything else", async () => {
    const t = await createTenant();
    const me = await api<{ kind: string; tenantId: string; role: string; name: string }>(
      "GET",
      "/v1/whoami",
      {
        token: t.memberKey,
      },
    );
    expect(me.body).toMatchObject({ kind: "tenant", tenantId: t.id, role: "member", name: "bob" });
    expect((await api<{ kind: string }>("GET", "/v1/whoami", { token: ADMIN })).body).toEqual({
      kind: "admin",
    });
    expectProblem(await api("GET", "/v1/whoami"), 401);
  });
});
