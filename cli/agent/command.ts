// `gantry agent`: parses the command line, runs the agent until it drains, and maps signals and results
// to exit codes. First SIGTERM/SIGINT drains gracefully; a second one kills every job at once.
import { UsageError } from "../lib/errors.ts";
import { createLogger } from "../lib/log.ts";
import { runAgent } from "./agent.ts";
import { AGENT_USAGE, parseAgentOptions } from "./options.ts";

export async function run(argv: string[]): Promise<number> {
  let options: ReturnType<typeof parseAgentOptions>;
  try {
    options = parseAgentOptions(argv, process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`gantry agent: ${err.message}\nRun 'gantry agent --help' for usage.\n`);
    return err.exitCode;
  }
  if (options === null) {
    process.stdout.write(AGENT_USAGE);
    return 0;
  }

  const logger = createLogger({ level: options.logLevel });
  const agent = runAgent(options, { logger });

  let signals = 0;
  let lastSignal: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    lastSignal = signal;
    if (signals === 1) {
      logger.info(`received ${signal}: draining; send it again to kill all jobs and exit now`);
      void agent.stop();
    } else {
      void agent.kill();
    }
  };
  // Jobs run in their own process groups and would outlive an agent that exits abnormally.
  const onExit = () => agent.killProcessesSync();
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.on("exit", onExit);
  try {
    const result = await agent.done;
    if (result.reason === "killed" && lastSignal) return lastSignal === "SIGINT" ? 130 : 143;
    return result.exitCode;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}
