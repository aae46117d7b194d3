// `gantry agent` command line: flags, GANTRY_URL / GANTRY_JOIN_TOKEN from the environment, and checks that
// turn mistakes into one clear line (exit 2) before anything touches the network.
import { hostname as osHostname } from "node:os";
import { boolFlag, listFlag, parseFlags, parseKeyValues, parseSeconds, stringFlag } from "../lib/args.ts";
import { UsageError } from "../lib/errors.ts";
import { isLogLevel, type LogLevel } from "../lib/log.ts";
import { isValidGpuType, parseFakeSpec } from "./gpus.ts";

export interface AgentOptions {
  /** Control plane base URL, without trailing slash. */
  url: string;
  joinToken: string;
  /** "auto" (nvidia-smi) or a fake spec such as "fake:8xH100". */
  gpus: string;
  gpuType?: string | undefined;
  hostname: string;
  labels: Record<string, string>;
  drainTimeoutSeconds: number;
  /** How often a running job's output tail is uploaded when it changed; 0 = only with the final report. */
  logIntervalSeconds?: number;
  logLevel: LogLevel;
}

export const AGENT_USAGE = `Usage: gantry agent --url URL --join-token TOKEN [options]

Registers this host's GPUs with a Gantry control plane and runs the jobs it is given.

Options:
  --url URL                 control plane address (env GANTRY_URL)
  --join-token TOKEN        pool join token from your admin (env GANTRY_JOIN_TOKEN; prefer the env
                            variable: command lines are visible to other users in ps)
  --gpus auto|fake:NxTYPE   GPUs to offer: "auto" asks nvidia-smi (default); "fake:8xH100" or
                            "fake:2xH100,1xA100" pretends, for testing without GPUs
  --gpu-type TYPE           GPU type to advertise instead of the one derived from the model name
  --hostname NAME           name to register under (default: this machine's hostname)
  --label key=value         worker label; repeat for more
  --drain-timeout SECONDS   on SIGTERM/SIGINT, how long running jobs may finish before they are
                            killed (default 600; a second signal kills them at once)
  --log-interval SECONDS    upload a running job's output tail (last 64 KiB) this often when it changed,
                            for "gantry logs --follow" (default 15; 0 = only when the job ends)
  --log-level LEVEL         debug, info (default), warn or error; logs are JSON lines on stderr
  -h, --help                show this help

Exit codes: 0 drained and stopped, 1 error, 2 bad usage, 3 join token rejected.
`;

const FLAGS = {
  url: { type: "string" },
  "join-token": { type: "string" },
  gpus: { type: "string" },
  "gpu-type": { type: "string" },
  hostname: { type: "string" },
  label: { type: "string", multiple: true },
  "drain-timeout": { type: "string" },
  "log-level": { type: "string" },
  "log-interval": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Parses argv (after "agent"); returns null when help was asked for. */
export function parseAgentOptions(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  defaultHostname: () => string = osHostname,
): AgentOptions | null {
  const flags = parseFlags(argv, FLAGS);
  if (boolFlag(flags, "help")) return null;

  const url = validateUrl(stringFlag(flags, "url") ?? env.GANTRY_URL);
  const joinToken = stringFlag(flags, "join-token") ?? env.GANTRY_JOIN_TOKEN;
  if (!joinToken) {
    throw new UsageError("missing --join-token (or GANTRY_JOIN_TOKEN): ask your admin for a pool join token");
  }

  const hostname = stringFlag(flags, "hostname") ?? defaultHostname();
  if (hostname.trim() === "") throw new UsageError("--hostname must not be empty");

  const gpus = stringFlag(flags, "gpus") ?? "auto";
  if (gpus !== "auto") {
    if (!gpus.startsWith("fake:")) {
      throw new UsageError(`--gpus must be "auto" or a fake spec like "fake:4xH100", got "${gpus}"`);
    }
    parseFakeSpec(gpus, hostname); // validate now, not after connecting
  }

  const gpuType = stringFlag(flags, "gpu-type");
  if (gpuType !== undefined && !isValidGpuType(gpuType)) {
    throw new UsageError(`--gpu-type must be letters, digits, ".", "_" or "-", got "${gpuType}"`);
  }

  const logLevel = stringFlag(flags, "log-level") ?? "info";
  if (!isLogLevel(logLevel))
    throw new UsageError(`--log-level must be debug, info, warn or error, got "${logLevel}"`);

  const drainRaw = stringFlag(flags, "drain-timeout");
  const logIntervalRaw = stringFlag(flags, "log-interval");
  return {
    url,
    joinToken,
    gpus,
    gpuType,
    hostname,
    labels: parseKeyValues(listFlag(flags, "label"), "label"),
    drainTimeoutSeconds: drainRaw === undefined ? 600 : parseSeconds(drainRaw, "drain-timeout"),
    logIntervalSeconds: logIntervalRaw === undefined ? 15 : parseSeconds(logIntervalRaw, "log-interval"),
    logLevel,
  };
}

function validateUrl(raw: string | undefined): string {
  if (!raw)
    throw new UsageError(
      "missing --url (or GANTRY_URL): the control plane address, e.g. https://gantry.example.com",
    );
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url is not a valid URL: "${raw}" (expected e.g. https://gantry.example.com)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--url must start with http:// or https://, got "${raw}"`);
  }
  if (url.username || url.password)
    throw new UsageError("--url must not contain credentials; use --join-token");
  if (url.search || url.hash) throw new UsageError("--url must not have a query or fragment");
  return url.toString().replace(/\/+$/, "");
}
