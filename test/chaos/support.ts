// Chaos helpers: the control plane started through the same launcher as `npm start`, but with the database
// owned by the test and reached through a gate this process controls, so a test can take Postgres away and
// bring it back, and kill -9 the runtime and restart it on the same data directory and port.
//
//   Worker (workerd) ──ws──▶ launcher's WS→TCP proxy ──tcp──▶ gate (here) ──tcp──▶ Postgres / PGlite
//
// Embedded database (default): the test runs PGlite itself (db/local/postgres.ts startPglite on
// <dataDir>/pgdata); "Postgres down" really stops it and later starts it again on the same directory.
// DATABASE_URL: a fresh database on that server, which the test cannot stop (CI shares it): the gate refuses
// and cuts every connection instead — the Worker's route to Postgres is blocked, the server keeps running.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { allPids, cmdline, descendants, processGroup } from "../../bench/lib/proc.ts";
import { freePort, type Launched, launch } from "../../db/launcher.ts";
import { createFreshDatabase, type LocalDatabase, startPglite } from "../../db/local/postgres.ts";

/** A TCP relay that can be cut (every open connection reset, new ones refused) and pointed elsewhere. */
export class DbGate {
  private server: net.Server;
  private sockets = new Set<net.Socket>();
  private target: string | null = null;
  port = 0;

  constructor() {
    this.server = net.createServer((client) => this.accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", () => resolve()));
    const a = this.server.address();
    this.port = typeof a === "object" && a ? a.port : 0;
    return this.port;
  }

  /** Where connections go; null = refuse them (reset at once, like a server that is down). */
  setTarget(address: string | null): void {
    this.target = address;
    if (!address) for (const s of this.sockets) s.destroy();
  }

  private accept(client: net.Socket): void {
    if (!this.target) {
      client.resetAndDestroy();
      return;
    }
    const i = this.target.lastIndexOf(":");
    const upstream = net.connect({ host: this.target.slice(0, i), port: Number(this.target.slice(i + 1)) });
    this.sockets.add(client);
    this.sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
    const done = () => {
      this.sockets.delete(client);
      this.sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", done).on("close", done);
    upstream.on("error", done).on("close", done);
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export interface ChaosServer {
  url: string;
  admin: string;
  dataDir: string;
  /** Direct URL of the database (bypasses the gate): for the test's own checks. */
  databaseUrl: string;
  embedded: boolean;
  launched(): Launched;
  /** Postgres goes away: the embedded database is stopped; a DATABASE_URL database is cut off at the gate. */
  stopDatabase(): Promise<void>;
  startDatabase(): Promise<void>;
  /** SIGKILL the whole wrangler dev process group (wrangler and its workerd processes). */
  kill9(): Promise<{ killed: number[] }>;
  /** Start wrangler dev again on the same data directory and port. */
  restart(): Promise<void>;
  destroy(): Promise<void>;
}

export interface ChaosOptions {
  heartbeatSeconds?: number;
  leaseTtlSeconds?: number;
  cronSeconds?: number;
  vars?: Record<string, string>;
}

export async function startChaosServer(opts: ChaosOptions = {}): Promise<ChaosServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "gantry-chaos-"));
  const gate = new DbGate();
  const gatePort = await gate.listen();
  const server = process.env.DATABASE_URL;
  let db: LocalDatabase = server
    ? await createFreshDatabase(server, "gantry_chaos")
    : await startPglite(path.join(dataDir, "pgdata"));
  gate.setTarget(db.address);
  // The Worker (and the launcher's migrations and proxy allow-list) see the gate as the database.
  const viaGate = new URL(db.url);
  viaGate.hostname = "127.0.0.1";
  viaGate.port = String(gatePort);
  const port = await freePort();
  const boot = () =>
    launch({
      port,
      dataDir,
      databaseUrl: viaGate.toString(),
      heartbeatSeconds: opts.heartbeatSeconds ?? 1,
      leaseTtlSeconds: opts.leaseTtlSeconds ?? 10,
      cronSeconds: opts.cronSeconds ?? 60,
      vars: { FLEET_SHARDS: "4", OUTBOX_FLUSH_MS: "50", LOG_REQUESTS: "0", ...opts.vars },
      logLevel: process.env.GANTRY_E2E_VERBOSE ? "log" : "warn",
      quiet: !process.env.GANTRY_E2E_VERBOSE,
    });
  let launched = await boot();

  /** wrangler's pid: the launcher starts it detached, so its pid is also its process group id. */
  const wranglerPid = () =>
    descendants(process.pid).find((p) => {
      const c = cmdline(p);
      return c.includes("wrangler.js") && c.includes(dataDir);
    }) ?? null;

  return {
    url: launched.url,
    admin: launched.adminToken,
    dataDir,
    get databaseUrl() {
      return db.url;
    },
    embedded: !server,
    launched: () => launched,
    stopDatabase: async () => {
      gate.setTarget(null);
      if (!server) await db.stop();
    },
    startDatabase: async () => {
      if (!server) db = await startPglite(path.join(dataDir, "pgdata"));
      gate.setTarget(db.address);
    },
    kill9: async () => {
      const pid = wranglerPid();
      if (!pid) throw new Error("wrangler dev is not running");
      const group = allPids().filter((p) => processGroup(p) === pid);
      process.kill(-pid, "SIGKILL");
      await launched.exited;
      // Nothing of the old runtime may survive (a workerd outside the group would keep the port and files).
      for (let i = 0; i < 50 && allPids().some((p) => processGroup(p) === pid); i++)
        await new Promise((r) => setTimeout(r, 100));
      await launched.stop(); // closes the launcher's proxy; the database is ours, untouched
      return { killed: group };
    },
    restart: async () => {
      launched = await boot();
    },
    destroy: async () => {
      await launched.stop().catch(() => {});
      await gate.close();
      await db.stop().catch(() => {});
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
