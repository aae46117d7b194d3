// Help text and spec defaults shared by the `gantry admin` groups.

import type { FlagSpec } from "../../lib/args.ts";
import { EXIT_CODES_HELP } from "../../lib/exit-codes.ts";
import { COMMON_HELP, type CommandSpec } from "../context.ts";

export function adminSpec(
  name: string,
  synopsis: string,
  text: string,
  o: { flags?: FlagSpec; options?: string; args?: CommandSpec["args"]; notFound?: string } = {},
): CommandSpec {
  const options = o.options ? `\nOptions:\n${o.options}\n\n` : "\n";
  return {
    name: `admin ${name}`,
    usage: `Usage: gantry admin ${name} ${synopsis}\n\n${text}\n${options}${COMMON_HELP}\n\nUses the platform admin token (profile's admin token, or GANTRY_ADMIN_TOKEN).\n\n${EXIT_CODES_HELP}`,
    role: "admin",
    ...(o.flags ? { flags: o.flags } : {}),
    ...(o.args ? { args: o.args } : {}),
    ...(o.notFound ? { notFound: o.notFound } : {}),
  };
}
