// `gantry login --url URL --key KEY`: checks the key against the server, finds out what it is (a tenant
// API key or the platform admin token), and stores it in the profile. Nothing is saved that the server
// did not accept, so a typo fails here and not at the next command.
import { readFileSync } from "node:fs";
import { agentVersion } from "../agent/version.ts";
import { Api } from "../lib/api.ts";
import { stringFlag } from "../lib/args.ts";
import { configPath, type Profile, readConfig, writeConfig } from "../lib/config.ts";
import { CliError, UsageError } from "../lib/errors.ts";
import { EXIT, EXIT_CODES_HELP } from "../lib/exit-codes.ts";
import { ApiError, NetworkError } from "../lib/http.ts";
import { COMMON_HELP, type Ctx, runCommand } from "./context.ts";

const USAGE = `Usage: gantry login --url URL --key KEY [--profile NAME]

Checks KEY against the control plane at URL and saves both in a profile, in
$XDG_CONFIG_HOME/gantry/config.json (else ~/.config/gantry/config.json, mode 0600).

KEY is a tenant API key (stored as the profile's key) or the platform admin token (stored as the
profile's admin token, used by 'gantry admin' and 'gantry workers'); one profile can hold both.
Logging in to another URL replaces the profile.

Options:
  --url URL             the control plane, e.g. https://gantry.example.com (env GANTRY_URL)
  --key KEY             the key; "-" reads it from stdin (keeps it out of 'ps' and shell history;
                        env GANTRY_KEY also works)
${COMMON_HELP}

Environment: GANTRY_URL, GANTRY_KEY (tenant key) and GANTRY_ADMIN_TOKEN override the profile for
every command; GANTRY_PROFILE selects the profile.

${EXIT_CODES_HELP}`;

export async function run(argv: string[]): Promise<number> {
  return runCommand(
    { name: "login", usage: USAGE, flags: { url: { type: "string" }, key: { type: "string" } } },
    argv,
    login,
  );
}

export function normalizeUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url is not a valid URL: "${raw}" (expected e.g. https://gantry.example.com)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--url must start with http:// or https://, got "${raw}"`);
  }
  if (url.username || url.password) throw new UsageError("--url must not contain credentials; use --key");
  if (url.search || url.hash) throw new UsageError("--url must not have a query or fragment");
  return url.toString().replace(/\/+$/, "");
}

/** What the key is, asked of the server: tenant keys read their queue; the admin token lists tenants. */
export async function identify(
  api: Api,
): Promise<{ kind: "tenant"; tenantId: string } | { kind: "admin"; tenants: number }> {
  try {
    const q = await api.get<{ tenantId: string }>("/v1/queue");
    return { kind: "tenant", tenantId: q.tenantId };
  } catch (err) {
    // 403: a valid token that is not a tenant key; only the admin token may list tenants.
    if (!(err instanceof ApiError) || err.status !== 403) throw err;
  }
  try {
    const t = await api.get<{ items: unknown[] }>("/v1/tenants");
    return { kind: "admin", tenants: t.items.length };
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      throw new CliError(
        "this token is neither a tenant API key nor the platform admin token (a worker or join token?)",
        EXIT.auth,
      );
    }
    throw err;
  }
}

async function login(ctx: Ctx): Promise<number> {
  const rawUrl = stringFlag(ctx.flags, "url") ?? ctx.env.GANTRY_URL;
  if (!rawUrl) throw new UsageError("missing --url: the control plane's address");
  const url = normalizeUrl(rawUrl);
  let key = stringFlag(ctx.flags, "key") ?? ctx.env.GANTRY_KEY;
  if (key === "-") key = readFileSync(0, "utf8").trim();
  if (!key)
    throw new UsageError('missing --key: a tenant API key or the platform admin token ("-" reads stdin)');

  const who = await identify(new Api(url, key, { userAgent: `gantry-cli/${agentVersion()}` })).catch(
    (err: unknown) => {
      if (err instanceof NetworkError) {
        throw new CliError(`${err.message}\nhint: is the control plane running at ${url}?`, EXIT.unavailable);
      }
      if (err instanceof ApiError && err.status === 401) {
        throw new CliError(
          `the server at ${url} rejected this key (401): check it, or ask your admin for a new one`,
          EXIT.auth,
        );
      }
      throw err;
    },
  );

  const file = configPath(ctx.env);
  const { config } = readConfig(file);
  const old = config.profiles[ctx.profile];
  // Keys belong to one server: logging in elsewhere starts the profile afresh.
  const profile: Profile = old && old.url === url ? { ...old } : { url };
  if (who.kind === "tenant") profile.key = key;
  else profile.adminToken = key;
  config.profiles[ctx.profile] = profile;
  writeConfig(config, file);

  const what = who.kind === "tenant" ? `tenant ${who.tenantId}` : "the platform admin";
  if (ctx.json) {
    ctx.out.doc({
      profile: ctx.profile,
      url,
      kind: who.kind,
      ...(who.kind === "tenant" ? { tenantId: who.tenantId } : {}),
      path: file,
    });
  } else {
    ctx.out.line(`Logged in to ${url} as ${what}; saved profile "${ctx.profile}" in ${file}.`);
  }
  return EXIT.ok;
}
