// The `gantry` command. Each subcommand lives in its own module and is loaded only when used, so adding
// one is a line in COMMANDS plus a file exporting `run(argv): Promise<number>` (the exit code).
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CliError, describeError } from "./lib/errors.ts";
import { EXIT_CODES_HELP } from "./lib/exit-codes.ts";

export interface CommandModule {
  run(argv: string[]): Promise<number>;
}

interface CommandEntry {
  summary: string;
  load(): Promise<CommandModule>;
}

export const COMMANDS: Record<string, CommandEntry> = {
  login: {
    summary: "check a key against the server and save it with the URL in a profile",
    load: () => import("./commands/login.ts"),
  },
  logout: { summary: "forget a profile's URL and keys", load: () => import("./commands/logout.ts") },
  submit: {
    summary: "submit a job: gantry submit [--gpus N ...] [--wait] -- CMD ARGS...",
    load: () => import("./commands/submit.ts"),
  },
  jobs: {
    summary: "list jobs (--state, --user, ...); --watch follows transitions",
    load: () => import("./commands/jobs.ts"),
  },
  show: { summary: "show one job in full, with its transitions", load: () => import("./commands/show.ts") },
  explain: {
    summary: "why is this job pending? reason, position, estimate",
    load: () => import("./commands/explain.ts"),
  },
  cancel: { summary: "cancel a job", load: () => import("./commands/cancel.ts") },
  logs: { summary: "print a job's output; --follow until it ends", load: () => import("./commands/logs.ts") },
  queue: { summary: "the tenant's queue at a glance", load: () => import("./commands/queue.ts") },
  workers: {
    summary: "workers and their GPU occupancy (admin)",
    load: () => import("./commands/workers.ts"),
  },
  policies: {
    summary: "admission policies: list, create, show, delete, evaluate",
    load: () => import("./commands/policies.ts"),
  },
  pipeline: {
    summary: "pipelines (DAGs of job steps): list, create, show, run, cancel",
    load: () => import("./commands/pipeline.ts"),
  },
  quota: { summary: "the tenant's quota and what is in use", load: () => import("./commands/quota.ts") },
  usage: { summary: "GPU time by user and GPU type", load: () => import("./commands/usage.ts") },
  admin: {
    summary: "platform admin: tenant, key, pool, join-token, quota",
    load: () => import("./commands/admin.ts"),
  },
  agent: {
    summary: "run the GPU host agent (registers GPUs, runs assigned jobs)",
    load: () => import("./agent/command.ts"),
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `Usage: gantry <command> [options]

Gantry: a multi-tenant GPU job control plane.

Commands:
${lines.join("\n")}

Start with 'gantry login --url URL --key KEY'. Every command takes --json (the API's JSON on
stdout, nothing else there), --profile NAME and --help.

Profiles live in $XDG_CONFIG_HOME/gantry/config.json (else ~/.config/gantry/config.json).
Environment: GANTRY_URL, GANTRY_KEY, GANTRY_ADMIN_TOKEN override the profile; GANTRY_PROFILE
picks one; GANTRY_EVENTS=poll follows events by polling instead of Server-Sent Events.

${EXIT_CODES_HELP}
Run 'gantry <command> --help' for a command's options.
`;
}

/** Runs the CLI; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(usage());
    return 2;
  }
  if (name === "--help" || name === "-h" || name === "help") {
    // "gantry help agent" is "gantry agent --help".
    if (rest[0] !== undefined && Object.hasOwn(COMMANDS, rest[0])) return main([rest[0], "--help"]);
    process.stdout.write(usage());
    return 0;
  }
  if (!Object.hasOwn(COMMANDS, name)) {
    process.stderr.write(
      `gantry: unknown command "${name}". Run 'gantry --help' for the list of commands.\n`,
    );
    return 2;
  }
  try {
    const command = await COMMANDS[name]!.load();
    return await command.run(rest);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`gantry ${name}: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`gantry ${name}: internal error: ${describeError(err)}\n`);
    return 1;
  }
}

/** True when this module is the program being run (not imported by a test or by bin/gantry.mjs). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

/** Runs main() and exits; lingering sockets (keep-alive, WebSocket) must not keep the process up. */
export async function runAndExit(argv: string[]): Promise<never> {
  const code = await main(argv);
  process.exit(code);
}

if (isEntryPoint()) await runAndExit(process.argv.slice(2));
