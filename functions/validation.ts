// Turns schema validation failures into problem+json with one entry per field. A path parameter that does
// not validate names no object that could exist: 404, not 400.
import type { Hook } from "@hono/zod-openapi";
import { GantryError } from "../src/errors.ts";
import type { HonoEnv } from "./hono-env.ts";

/**
 * The path of the first string (key or value) holding U+0000, or null. Postgres can store NUL neither in
 * text nor in jsonb: let one in and the insert fails — a 500 on admin routes, and on the tenant's outbox a
 * row that can never be flushed, which stops all of that tenant's history. No API value needs it.
 */
function findNul(v: unknown, path: string[] = []): string[] | null {
  // One path array, pushed and popped: this runs on every request body, and almost never finds anything.
  if (typeof v === "string") return v.includes("\u0000") ? path : null;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      path.push(String(i));
      if (findNul(v[i], path)) return path;
      path.pop();
    }
    return null;
  }
  if (v && typeof v === "object") {
    for (const k of Object.keys(v)) {
      path.push(k);
      if (k.includes("\u0000") || findNul((v as Record<string, unknown>)[k], path)) return path;
      path.pop();
    }
  }
  return null;
}

// biome-ignore lint/suspicious/noExplicitAny: the hook is shared by routes of every input type
export const validationHook: Hook<any, HonoEnv, any, any> = (result) => {
  if (result.success) {
    const nul = findNul(result.data);
    if (!nul) return;
    if (result.target === "param") throw new GantryError("NotFound", "no such object");
    const path = [result.target === "json" ? "" : result.target, ...nul].filter(Boolean).join(".");
    throw new GantryError("ValidationFailed", `${path || "body"}: NUL characters (U+0000) are not allowed`, [
      { path, message: "NUL characters (U+0000) are not allowed" },
    ]);
  }
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
