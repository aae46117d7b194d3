// End-to-end helpers: start the control plane exactly as `npm start` does (same launcher), start real
// agent processes, and call the HTTP API like any client.
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { freePort, type Launched, launch } from "../../db/launcher.ts";
import { createFreshDatabase, type LocalDatabase } from "../../db/local/postgres.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface Server {
  url: string;
  admin: string;
  dataDir: string;
  databaseUrl: string;
  launched: Launched;
  /** Stop wrangler (and the embedded database); the data directory stays for a restart. */
  stop(): Promise<void>;
  restart(): Promise<Server>;
  /** Stop and delete everything this server created. */
  destroy(): Promise<void>;
}

export interface ServerOptions {
  heartbeatSeconds?: number;
  leaseTtlSeconds?: number;
  cronSeconds?: number;
  vars?: Record<string, string>;
  logLevel?: "log" | "warn";
}

export async function startServer(opts: ServerOptions = {}): Promise<Server> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "gantry-e2e-"));
  // With DATABASE_URL (CI's Debian PostgreSQL), each server gets a database of its own.
  const fresh: LocalDatabase | null = process.env.DATABASE_URL
    ? await createFreshDatabase(process.env.DATABASE_URL, "gantry_e2e")
    : null;
  const boot = async (): Promise<Server> => {
    const port = await freePort();
    const launched = await launch({
      port,
      dataDir,
      databaseUrl: fresh?.url,
      heartbeatSeconds: opts.heartbeatSeconds ?? 1,
      leaseTtlSeconds: opts.leaseTtlSeconds ?? 5,
      cronSeconds: opts.cronSeconds ?? 60,
      vars: { FLEET_SHARDS: "4", OUTBOX_FLUSH_MS: "50", ...opts.vars },
      logLevel: opts.logLevel ?? (process.env.GANTRY_E2E_VERBOSE ? "log" : "warn"),
      quiet: !process.env.GANTRY_E2E_VERBOSE,
    });
    const server: Server = {
      url: launched.url,
      admin: launched.adminToken,
      dataDir,
      databaseUrl: launched.database.url,
      launched,
      stop: () => launched.stop(),
      restart: async () => {
        await launched.stop();
        return boot();
      },
      destroy: async () => {
        await launched.stop();
        await fresh?.stop();
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
    return server;
  };
  return boot();
}

export interface Resp<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

export async function call<T = Record<string, unknown>>(
  s: { url: string },
  method: string,
  p: string,
  token?: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Resp<T>> {
  const h: Record<string, string> = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h["content-type"] = "application/json";
  const r = await fetch(`${s.url}${p}`, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: r.status, body: parsed as T, headers: r.headers };
}

export async function must<T = Record<string, unknown>>(
  s: { url: string },
  method: string,
  p: string,
  token?: string,
  body?: unknown,
): Promise<T> {
  const r = await call<T>(s, method, p, token, body);
  if (r.status >= 300) throw new Error(`${method} ${p} → ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Tenant with an admin and a member key, a pool and a join token. */
export async function bootstrap(s: Server, tenant = "acme", pool = "gpu") {
  await must(s, "POST", "/v1/tenants", s.admin, { id: tenant });
  const adminKey = (
    await must<{ key: string }>(s, "POST", `/v1/tenants/${tenant}/keys`, s.admin, {
      name: "root",
      role: "admin",
    })
  ).key;
  const key = (
    await must<{ key: string }>(s, "POST", `/v1/tenants/${tenant}/keys`, s.admin, {
      name: "alice",
      role: "member",
    })
  ).key;
  await must(s, "POST", "/v1/pools", s.admin, { id: pool });
  const joinToken = (await must<{ token: string }>(s, "POST", `/v1/pools/${pool}/join-tokens`, s.admin, {}))
    .token;
  return { tenant, key, adminKey, pool, joinToken };
}

export interface AgentProc {
  proc: ChildProcess;
  output(): string;
  workerId(): string | null;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

/** A real `gantry agent` process (through the installed-command shim). */
export function startAgent(
  s: { url: string },
  joinToken: string,
  gpus: string,
  extra: string[] = [],
): AgentProc {
  const proc = spawn(
    process.execPath,
    [
      path.join(ROOT, "bin", "gantry.mjs"),
      "agent",
      "--url",
      s.url,
      "--join-token",
      joinToken,
      "--gpus",
      gpus,
      ...extra,
    ],
    {
      cwd: ROOT,
      env: { ...process.env, GANTRY_JOIN_TOKEN: "" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  proc.stdout?.on("data", (d) => {
    out += d.toString();
  });
  proc.stderr?.on("data", (d) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  return {
    proc,
    output: () => out,
    workerId: () => /"workerId":"(w-[a-z0-9-]+)"/.exec(out)?.[1] ?? null,
    exited,
    kill: (sig = "SIGTERM") => {
      if (proc.exitCode === null) proc.kill(sig);
    },
  };
}

export async function waitFor<T>(
  fn: () => Promise<T | null | undefined | false>,
  ms = 30_000,
  what = "condition",
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function job(s: Server, key: string, id: string) {
  return must<Record<string, unknown> & { state: string }>(s, "GET", `/v1/jobs/${id}`, key);
}

export async function waitForState(s: Server, key: string, id: string, states: string[], ms = 30_000) {
  return waitFor(
    async () => {
      const j = await job(s, key, id);
      return states.includes(j.state) ? j : null;
    },
    ms,
    `job ${id} to reach ${states.join("|")}`,
  );
}

export async function pgQuery<T = Record<string, unknown>>(
  url: string,
  q: string,
  params: unknown[] = [],
): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(q, params)).rows as T[];
  } finally {
    await c.end();
  }
}
