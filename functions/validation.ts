// Turns schema validation failures into problem+json with one entry per field. A path parameter that does
// not validate names no object that could exist: 404, not 400.
import type { Hook } from "@hono/zod-openapi";
import { GantryError } from "../src/errors.ts";
import type { HonoEnv } from "./hono-env.ts";

// biome-ignore lint/suspicious/noExplicitAny: the hook is shared by routes of every input type
export const validationHook: Hook<any, HonoEnv, any, any> = (result) => {
  if (result.success) return;
  const issues = result.error.issues.map((i) => ({
    path: [result.target === "json" ? "" : result.target, ...i.path.map(String)].filter(Boolean).join("."),
    message:
      i.code === "unrecognized_keys"
        ? `unknown field(s): ${(i as { keys?: string[] }).keys?.join(", ")}`
        : i.message,
  }));
  if (result.target === "param") throw new GantryError("NotFound", "no such object");
  const summary = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
  throw new GantryError("ValidationFailed", summary || "request is not valid", issues);
};
