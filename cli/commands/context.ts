// What every user-facing command shares: the common flags (--json, --profile, --help), strict parsing with
// usage errors (exit 2), credentials from the profile or the environment, and one place that turns API
// and network failures into a message, a hint and the documented exit code.
import { agentVersion } from "../agent/version.ts";
import { Api } from "../lib/api.ts";
import { type FlagSpec, type ParsedFlags, parseFlags, stringFlag } from "../lib/args.ts";
import {
  type Credentials,
  configPath,
  DEFAULT_PROFILE,
  type Profile,
  profileName,
  type Role,
  readConfig,
  resolveCredentials,
} from "../lib/config.ts";
import { CliError, UsageError } from "../lib/errors.ts";
import { EXIT, exitCodeForError } from "../lib/exit-codes.ts";
import { ApiError, NetworkError } from "../lib/http.ts";
import { describeFailure } from "./errors.ts";
import { Output } from "./output.ts";

export const COMMON_FLAGS = {
  json: { type: "boolean" },
  profile: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies FlagSpec;

export const COMMON_HELP = `Common options:
  --json                print the API's JSON (one document) instead of a table
  --profile NAME        use this profile (env GANTRY_PROFILE; default "default")
  -h, --help            show this help`;

export interface CommandSpec {
  /** As typed: "jobs", "admin tenant create". */
  name: string;
  usage: string;
  flags?: FlagSpec;
  /** How many positional arguments the command takes (after the subcommand words). */
  args?: { min: number; max: number; names: string };
  /** The token it needs (default: a tenant key). */
  role?: Role;
  /** Hint on 404. */
  notFound?: string;
}

export class Ctx {
  readonly out: Output;
  readonly profile: string;
  private creds: Credentials | undefined;
  private used: Role | undefined;
  private clients = new Map<Role, { api: Api; creds: Credentials }>();

  constructor(
    readonly spec: CommandSpec,
    readonly flags: ParsedFlags,
    readonly args: string[],
    readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.out = new Output(flags.values.json === true);
    this.profile = profileName(stringFlag(flags, "profile"), env);
  }

  get json(): boolean {
    return this.out.json;
  }

  /** The role of the token in use (for error hints): the last one asked for, else the command's. */
  get role(): Role {
    return this.used ?? this.spec.role ?? "tenant";
  }

  /** The API client with the token for `role` (default: the command's). */
  api(role: Role = this.spec.role ?? "tenant"): Api {
    this.used = role;
    const cached = this.clients.get(role);
    if (cached) {
      this.creds = cached.creds;
      return cached.api;
    }
    const file = configPath(this.env);
    const { config, tooOpen } = readConfig(file);
    if (tooOpen) this.out.info(`warning: ${file} is readable by other users; run 'chmod 600 ${file}'`);
    const profile: Profile | undefined = config.profiles[this.profile];
    if (!profile && this.profile !== DEFAULT_PROFILE && !this.env.GANTRY_URL) {
      throw new CliError(
        `no profile "${this.profile}" in ${file}: run 'gantry login --url URL --key KEY --profile ${this.profile}'`,
        EXIT.auth,
      );
    }
    const creds = resolveCredentials(role, profile, this.profile, this.env);
    const api = new Api(creds.url, creds.token, { userAgent: `gantry-cli/${agentVersion()}` });
    this.clients.set(role, { api, creds });
    this.creds = creds;
    return api;
  }

  get credentials(): Credentials | undefined {
    return this.creds;
  }
}

/** Runs one command: parse, --help, then the handler; failures become a message and an exit code. */
export async function runCommand(
  spec: CommandSpec,
  argv: string[],
  handler: (ctx: Ctx) => Promise<number>,
): Promise<number> {
  let ctx: Ctx;
  try {
    const flags = parseFlags(argv, { ...COMMON_FLAGS, ...spec.flags }, true);
    if (flags.values.help === true) {
      process.stdout.write(spec.usage);
      return EXIT.ok;
    }
    const args = spec.args ?? { min: 0, max: 0, names: "" };
    if (flags.positionals.length < args.min) throw new UsageError(`missing ${args.names}`);
    if (flags.positionals.length > args.max) {
      throw new UsageError(`unexpected argument "${flags.positionals[args.max]}"`);
    }
    ctx = new Ctx(spec, flags, flags.positionals);
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    return usageFailure(spec.name, err);
  }
  try {
    return await handler(ctx);
  } catch (err) {
    if (err instanceof ApiError || err instanceof NetworkError) {
      const creds = ctx.credentials;
      for (const line of describeFailure(err, {
        command: spec.name,
        role: ctx.role,
        url: creds?.url,
        profile: ctx.profile,
        tokenSource: creds?.source,
        notFound: spec.notFound,
      })) {
        process.stderr.write(`${line}\n`);
      }
      return exitCodeForError(err);
    }
    if (err instanceof UsageError) return usageFailure(spec.name, err);
    if (err instanceof CliError) {
      process.stderr.write(`gantry ${spec.name}: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

function usageFailure(name: string, err: CliError): number {
  process.stderr.write(`gantry ${name}: ${err.message}\n`);
  if (err.exitCode === EXIT.usage) process.stderr.write(`Run 'gantry ${name} --help' for usage.\n`);
  return err.exitCode;
}

export interface Subcommand {
  summary: string;
  run(argv: string[]): Promise<number>;
}

/** `gantry policies <sub> ...`: picks the subcommand (or the default one) and lists them on --help. */
export async function dispatch(
  name: string,
  intro: string,
  subs: Record<string, Subcommand>,
  argv: string[],
  fallback?: string,
): Promise<number> {
  const [first, ...rest] = argv;
  if (first !== undefined && Object.hasOwn(subs, first)) return subs[first]!.run(rest);
  const help = () => {
    const w = Math.max(...Object.keys(subs).map((k) => k.length));
    const list = Object.entries(subs).map(([k, s]) => `  ${k.padEnd(w)}  ${s.summary}`);
    return `Usage: gantry ${name} <command> [options]\n\n${intro}\n\nCommands:\n${list.join("\n")}\n\nRun 'gantry ${name} <command> --help' for a command's options.\n`;
  };
  if (first === "--help" || first === "-h" || first === "help") {
    process.stdout.write(help());
    return EXIT.ok;
  }
  // A default subcommand ("gantry policies" lists) runs when the next word is a flag or nothing.
  if (fallback && (first === undefined || first.startsWith("-"))) return subs[fallback]!.run(argv);
  process.stderr.write(
    first === undefined
      ? `gantry ${name}: missing command\n${help()}`
      : `gantry ${name}: unknown command "${first}". Run 'gantry ${name} --help' for the list.\n`,
  );
  return EXIT.usage;
}
