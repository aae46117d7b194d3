#!/usr/bin/env node
// Installed `gantry` command: loads tsx so the TypeScript CLI runs without a build step, then hands over
// to cli/main.ts (resolved next to this file, so it works from a global install or a clone).
import { register } from "tsx/esm/api";

register();
const { runAndExit } = await import(new URL("../cli/main.ts", import.meta.url).href);
await runAndExit(process.argv.slice(2));
