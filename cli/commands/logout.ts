// `gantry logout [--profile NAME]`: forgets a profile's URL and keys.
import { configPath, readConfig, writeConfig } from "../lib/config.ts";
import { EXIT } from "../lib/exit-codes.ts";
import { COMMON_HELP, runCommand } from "./context.ts";

const LOGOUT_USAGE = `Usage: gantry logout [--profile NAME]

Removes the profile (its URL and keys) from the config file.

${COMMON_HELP}
`;

export async function run(argv: string[]): Promise<number> {
  return runCommand({ name: "logout", usage: LOGOUT_USAGE }, argv, async (ctx) => {
    const file = configPath(ctx.env);
    const { config } = readConfig(file);
    const existed = Object.hasOwn(config.profiles, ctx.profile);
    delete config.profiles[ctx.profile];
    if (existed) writeConfig(config, file);
    if (ctx.json) ctx.out.doc({ profile: ctx.profile, removed: existed });
    else ctx.out.line(existed ? `Removed profile "${ctx.profile}".` : `No profile "${ctx.profile}".`);
    return EXIT.ok;
  });
}
