// `npm start`: the local control plane. Starts the database (embedded PGlite under GANTRY_DATA_DIR, or the
// Postgres in DATABASE_URL), applies migrations, starts the WebSocket→TCP proxy the Neon driver needs
// locally, runs `wrangler dev` on the same code that deploys, and fires the cron tick every minute.
// SIGTERM/SIGINT stop everything it started.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { applyMigrations, existingDatabase, type LocalDatabase, startPglite } from "./local/postgres.ts";
import { startWsProxy, type WsProxy } from "./local/ws-proxy.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export interface LauncherOptions {
  port: number;
  dataDir: string;
  databaseUrl?: string;
  adminToken?: string;
  heartbeatSeconds?: number;
  leaseTtlSeconds?: number;
  /** Seconds between cron ticks (default 60, like the deployed trigger). */
  cronSeconds?: number;
  /** Extra Worker variables (tests use short timers). */
  vars?: Record<string, string>;
  logLevel?: "debug" | "info" | "log" | "warn" | "error" | "none";
  quiet?: boolean;
  /** Aborted (SIGTERM while starting): stop what was started and reject, instead of leaving it running. */
  signal?: AbortSignal;
}

export interface Launched {
  url: string;
  adminToken: string;
  database: LocalDatabase;
  stop(): Promise<void>;
  /** Resolves when wrangler exits (on its own or by stop()). */
  exited: Promise<number | null>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

const log = (quiet: boolean | undefined, msg: string) => {
  if (!quiet) process.stderr.write(`[gantry] ${msg}\n`);
};

function adminTokenFor(opts: LauncherOptions): { token: string; generated: boolean } {
  if (opts.adminToken) return { token: opts.adminToken, generated: false };
  // Generated once per data directory and kept there, so a restart keeps the same token.
  const file = path.join(opts.dataDir, "admin-token");
  if (fs.existsSync(file)) return { token: fs.readFileSync(file, "utf8").trim(), generated: false };
  const token = `gadm_${randomBytes(24).toString("base64url")}`;
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, generated: true };
}

export async function launch(opts: LauncherOptions): Promise<Launched> {
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const database = opts.databaseUrl
    ? existingDatabase(opts.databaseUrl)
    : await startPglite(path.join(opts.dataDir, "pgdata"));
  log(
    opts.quiet,
    `database: ${database.kind === "pglite" ? `embedded (${opts.dataDir}/pgdata)` : "DATABASE_URL"}`,
  );
  await applyMigrations(database.url);
  const proxy: WsProxy = await startWsProxy({ allowed: [database.address] });
  const admin = adminTokenFor(opts);

  // Secrets go to wrangler through a private env file, never on its command line (ps) or in its logs.
  const vars: Record<string, string> = {
    ADMIN_TOKEN: admin.token,
    DATABASE_URL: database.url,
    PG_WS_PROXY: `127.0.0.1:${proxy.port}`,
    ...(opts.heartbeatSeconds ? { HEARTBEAT_SECONDS: String(opts.heartbeatSeconds) } : {}),
    ...(opts.leaseTtlSeconds ? { LEASE_TTL_SECONDS: String(opts.leaseTtlSeconds) } : {}),
    ...opts.vars,
  };
  const envFile = path.join(opts.dataDir, "worker.env");
  fs.writeFileSync(
    envFile,
    `${Object.entries(vars)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join("\n")}\n`,
    { mode: 0o600 },
  );

  const wranglerBin = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
  const child: ChildProcess = spawn(
    process.execPath,
    [
      wranglerBin,
      "dev",
      "--config",
      path.join(ROOT, "wrangler.toml"),
      "--port",
      String(opts.port),
      "--ip",
      "127.0.0.1",
      "--persist-to",
      path.join(opts.dataDir, "wrangler"),
      "--env-file",
      envFile,
      "--test-scheduled",
      "--show-interactive-dev-session=false",
      // wrangler reads the Worker's console through its inspector; two instances on the default port
      // would silently lose each other's logs.
      "--inspector-port",
      String(await freePort()),
      "--log-level",
      opts.logLevel ?? "log",
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: "false",
        CLOUDFLARE_CF_FETCH_ENABLED: "false",
        XDG_CONFIG_HOME: path.join(opts.dataDir, "xdg"),
        NO_COLOR: "1",
      },
      stdio: ["ignore", opts.quiet ? "pipe" : "inherit", opts.quiet ? "pipe" : "inherit"],
      detached: true, // its own process group: stop() takes workerd down with it
    },
  );
  let output = "";
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));

  const url = `http://127.0.0.1:${opts.port}`;
  let cron: NodeJS.Timeout | null = null;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    if (cron) clearInterval(cron);
    if (child.exitCode === null && child.pid) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      const killer = setTimeout(() => {
        try {
          if (child.pid) process.kill(-child.pid, "SIGKILL");
        } catch {}
      }, 5000);
      await exited;
      clearTimeout(killer);
    }
    await proxy.close();
    await database.stop();
  };

  const deadline = Date.now() + 90_000;
  for (;;) {
    if (opts.signal?.aborted) {
      await stop();
      throw new Error("stopped before it was ready");
    }
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`wrangler dev exited with code ${child.exitCode}\n${output}`);
    }
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.status === 200) break;
      if (r.status === 503) {
        await stop();
        throw new Error(`configuration refused: ${await r.text()}`);
      }
    } catch (e) {
      if (String(e).includes("configuration refused")) throw e;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`gantry did not become healthy within 90 s\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  // Crons never fire by themselves under wrangler dev: the launcher is the clock.
  const tick = () => {
    fetch(`${url}/__scheduled?cron=*+*+*+*+*`).catch(() => {});
  };
  cron = setInterval(tick, (opts.cronSeconds ?? 60) * 1000);
  cron.unref();
  if (admin.generated) log(opts.quiet, "generated an admin token (kept in the data directory)");
  return { url, adminToken: admin.token, database, stop, exited };
}

function intEnv(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`[gantry] ${name} must be a positive integer, got "${v}"\n`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  const dataDir = path.resolve(process.env.GANTRY_DATA_DIR || path.join(ROOT, ".gantry"));
  // Signals are handled from the first moment: one that arrives while starting must still stop wrangler
  // (its own process group) and the database, not leave them running without us.
  const starting = new AbortController();
  let launched: Launched | null = null;
  const shutdown = async (sig: string) => {
    log(false, `${sig}: stopping`);
    if (!launched) return starting.abort();
    await launched.stop();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  try {
    launched = await launch({
      port: intEnv("PORT") ?? 8787,
      dataDir,
      databaseUrl: process.env.DATABASE_URL || undefined,
      adminToken: process.env.ADMIN_TOKEN || undefined,
      heartbeatSeconds: intEnv("GANTRY_HEARTBEAT_SECONDS"),
      leaseTtlSeconds: intEnv("GANTRY_LEASE_TTL_SECONDS"),
      cronSeconds: intEnv("GANTRY_CRON_SECONDS"),
      logLevel: (process.env.GANTRY_LOG_LEVEL as LauncherOptions["logLevel"]) || "log",
      signal: starting.signal,
    });
  } catch (e) {
    if (starting.signal.aborted) process.exit(0);
    throw e;
  }
  process.stdout.write(
    `\nGantry is ready on ${launched.url}\n` +
      `  admin token: ${process.env.ADMIN_TOKEN ? "(from ADMIN_TOKEN)" : launched.adminToken}\n` +
      `  API reference: ${launched.url}/docs\n\n`,
  );
  const code = await launched.exited;
  log(false, `wrangler exited (${code}); stopping`);
  await launched.stop();
  process.exit(code ?? 1);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((e) => {
    process.stderr.write(`[gantry] ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
