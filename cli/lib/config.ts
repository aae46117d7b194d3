// Profiles: where the CLI keeps the control plane's URL and the keys for it, so commands need no flags.
// One JSON file, $XDG_CONFIG_HOME/gantry/config.json (else ~/.config/gantry/config.json), mode 0600 in a
// 0700 directory because it holds secrets. GANTRY_URL / GANTRY_KEY / GANTRY_ADMIN_TOKEN override it, so CI
// can run without a file at all.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CliError } from "./errors.ts";
import { EXIT } from "./exit-codes.ts";

export interface Profile {
  url: string;
  /** A tenant API key (gtk_…). */
  key?: string;
  /** The platform admin token. */
  adminToken?: string;
}

export interface ConfigFile {
  profiles: Record<string, Profile>;
}

export const DEFAULT_PROFILE = "default";

/** The directory, per the XDG base directory spec: a relative XDG_CONFIG_HOME is ignored. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(env.HOME || os.homedir(), ".config");
  return path.join(base, "gantry");
}

export const configPath = (env: NodeJS.ProcessEnv = process.env) => path.join(configDir(env), "config.json");

/** The profile name: --profile, else GANTRY_PROFILE, else "default". */
export function profileName(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const name = flag ?? env.GANTRY_PROFILE ?? DEFAULT_PROFILE;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new CliError(`profile names are letters, digits, ".", "_" and "-", got "${name}"`, EXIT.usage);
  }
  return name;
}

export interface ReadResult {
  config: ConfigFile;
  /** Set when the file is readable by other users (the caller warns). */
  tooOpen: boolean;
}

/** Reads the file; a missing file is an empty config. A corrupt one is an error naming the file. */
export function readConfig(file: string = configPath()): ReadResult {
  let text: string;
  let mode = 0o600;
  try {
    text = fs.readFileSync(file, "utf8");
    mode = fs.statSync(file).mode;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { config: { profiles: {} }, tooOpen: false };
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not valid JSON; fix it or delete it and run 'gantry login' again`);
  }
  const profiles = (parsed as { profiles?: unknown } | null)?.profiles;
  if (profiles === null || typeof profiles !== "object" || Array.isArray(profiles)) {
    throw new CliError(`${file} has no "profiles" object; delete it and run 'gantry login' again`);
  }
  const clean: Record<string, Profile> = {};
  for (const [name, p] of Object.entries(profiles as Record<string, unknown>)) {
    const v = p as Partial<Record<keyof Profile, unknown>> | null;
    if (!v || typeof v.url !== "string") continue;
    clean[name] = {
      url: v.url,
      ...(typeof v.key === "string" ? { key: v.key } : {}),
      ...(typeof v.adminToken === "string" ? { adminToken: v.adminToken } : {}),
    };
  }
  return { config: { profiles: clean }, tooOpen: process.platform !== "win32" && (mode & 0o077) !== 0 };
}

/**
 * Writes the file atomically (temp file + rename) with mode 0600, so a crash never leaves half a file
 * and the secret is never readable by others, not even for a moment.
 */
export function writeConfig(config: ConfigFile, file: string = configPath()): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.config.json.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600, flag: "wx" });
    fs.chmodSync(tmp, 0o600); // the umask may have narrowed it further; never wider
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new CliError(`cannot write ${file}: ${(err as Error).message}`);
  }
}

/** Which token a command wants: a tenant key (most commands) or the platform admin token (admin ...). */
export type Role = "tenant" | "admin";

export interface Credentials {
  url: string;
  token: string;
  profile: string;
  /** Where the token came from, for error hints: the variable's name, or "profile". */
  source: "GANTRY_KEY" | "GANTRY_ADMIN_TOKEN" | "profile";
}

/**
 * The URL and token for a command. Environment variables win over the profile; a command that wants a
 * tenant key falls back to the admin token and vice versa, so a profile with one kind of token works and
 * the server's 403 says what was missing.
 */
export function resolveCredentials(
  role: Role,
  profile: Profile | undefined,
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): Credentials {
  const url = (env.GANTRY_URL || profile?.url || "").replace(/\/+$/, "");
  type Source = Credentials["source"];
  const tenant: [string | undefined, Source][] = [
    [env.GANTRY_KEY, "GANTRY_KEY"],
    [profile?.key, "profile"],
  ];
  const admin: [string | undefined, Source][] = [
    [env.GANTRY_ADMIN_TOKEN, "GANTRY_ADMIN_TOKEN"],
    [profile?.adminToken, "profile"],
  ];
  const order = role === "admin" ? [...admin, ...tenant] : [...tenant, ...admin];
  const index = order.findIndex(([t]) => !!t);
  if (!url || index < 0) {
    const what = !url ? "no control plane URL" : "no key";
    throw new CliError(
      `${what} for profile "${name}": run 'gantry login --url URL --key KEY${name === DEFAULT_PROFILE ? "" : ` --profile ${name}`}' (or set GANTRY_URL and ${role === "admin" ? "GANTRY_ADMIN_TOKEN" : "GANTRY_KEY"})`,
      EXIT.auth,
    );
  }
  const [token, source] = order[index]!;
  return { url, token: token!, profile: name, source };
}
