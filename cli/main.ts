// The `gantry` command. Each subcommand lives in its own module and is loaded only when used, so adding
// one is a line in COMMANDS plus a file exporting `run(argv): Promise<number>` (the exit code).
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CliError, describeError } from "./lib/errors.ts";

export interface CommandModule {
  run(argv: string[]): Promise<number>;
}

interface CommandEntry {
  summary: string;
  load(): Promise<CommandModule>;
}

export const COMMANDS: Record<string, CommandEntry> = {
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
