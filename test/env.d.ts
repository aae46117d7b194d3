// The test runtime's env is the Worker's Env.
import type { Env as GantryEnv } from "../src/env.ts";

declare global {
  namespace Cloudflare {
    interface Env extends GantryEnv {}
  }
}
