// CORS from the CORS_ORIGINS variable. The test Worker runs with CORS_ORIGINS="https://dash.example"
// (vitest.worker.config.ts); other settings ("*", a list, empty) are checked on the middleware itself.
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { corsFromEnv } from "../../functions/gateway.ts";
import type { HonoEnv } from "../../functions/hono-env.ts";
import { ADMIN, api, createTenant, env } from "./helpers.ts";

const ALLOWED = "https://dash.example";
const OTHER = "https://evil.example";

describe("CORS (CORS_ORIGINS=https://dash.example)", () => {
  it("an allowed origin may read answers, errors included, and the headers a client needs", async () => {
    const t = await createTenant();
    const ok = await api("GET", "/v1/queue", { token: t.memberKey, headers: { origin: ALLOWED } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(ok.headers.get("vary")).toMatch(/origin/i);
    const exposed = (ok.headers.get("access-control-expose-headers") ?? "").toLowerCase();
    expect(exposed).toContain("x-request-id");
    expect(exposed).toContain("retry-after");
    // A dashboard must be able to read the problem document of a failed call.
    const denied = await api("GET", "/v1/queue", { headers: { origin: ALLOWED } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("access-control-allow-origin")).toBe(ALLOWED);
  });

  it("another origin gets no Access-Control-Allow-Origin (the browser blocks it)", async () => {
    const r = await api("GET", "/healthz", { headers: { origin: OTHER } });
    expect(r.status).toBe(200);
    expect(r.headers.get("access-control-allow-origin")).toBeNull();
    const withToken = await api("GET", "/v1/tenants", { token: ADMIN, headers: { origin: OTHER } });
    expect(withToken.status).toBe(200);
    expect(withToken.headers.get("access-control-allow-origin")).toBeNull();
    const none = await api("GET", "/healthz");
    expect(none.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("preflight: allowed without a token for the allowed origin, no grant for another", async () => {
    const preflight = (origin: string) =>
      api("OPTIONS", "/v1/jobs", {
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type, idempotency-key",
        },
      });
    const ok = await preflight(ALLOWED);
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(ok.headers.get("access-control-allow-methods")).toContain("POST");
    const allowed = (ok.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const h of ["authorization", "content-type", "idempotency-key", "x-request-id"])
      expect(allowed).toContain(h);
    expect(ok.headers.get("access-control-max-age")).toBe("600");
    const other = await preflight(OTHER);
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("CORS_ORIGINS parsing", () => {
  const appWith = (origins: string | undefined) => {
    const app = new Hono<HonoEnv>();
    app.use("*", corsFromEnv);
    app.get("/x", (c) => c.text("ok"));
    return (origin: string) =>
      app.request("/x", { headers: { origin } }, { ...env, CORS_ORIGINS: origins } as HonoEnv["Bindings"]);
  };

  it("empty or unset: no CORS headers at all", async () => {
    for (const v of [undefined, "", " , "]) {
      const r = await appWith(v)(ALLOWED);
      expect(r.headers.get("access-control-allow-origin")).toBeNull();
      expect(r.headers.get("access-control-expose-headers")).toBeNull();
    }
  });

  it("a comma-separated list (spaces ignored) allows exactly its members", async () => {
    const call = appWith(` ${ALLOWED} , https://ops.example `);
    expect((await call(ALLOWED)).headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect((await call("https://ops.example")).headers.get("access-control-allow-origin")).toBe(
      "https://ops.example",
    );
    expect((await call(OTHER)).headers.get("access-control-allow-origin")).toBeNull();
    // No prefix or suffix tricks.
    expect((await call(`${ALLOWED}.evil.example`)).headers.get("access-control-allow-origin")).toBeNull();
  });

  it("* allows any origin", async () => {
    expect((await appWith("*")(OTHER)).headers.get("access-control-allow-origin")).toBe("*");
  });
});
