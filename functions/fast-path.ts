// A hot route's body schema with a hand-written check in front (functions/submit-fast.ts for submits,
// src/protocol/heartbeat-fast.ts for heartbeats). Kept apart from validation.ts so unit tests in Node can
// import it without the Worker's types.
import type { z } from "@hono/zod-openapi";

const FAST = Symbol("gantry.fastPath");

/**
 * Gives a hot route's body schema a hand-written check for plainly valid bodies. The route's validator
 * (@hono/zod-validator) calls the schema's safeParseAsync; this instance's now asks `fast` first, which
 * returns exactly what the schema would (its unit test proves that on random bodies) or null, and then the
 * schema itself decides and words the error. Everything else (the OpenAPI document, parse, nesting in
 * other schemas) is the schema's own.
 */
export function withFastPath<S extends z.ZodType>(schema: S, fast: (raw: unknown) => z.output<S> | null): S {
  const s = schema as S & { [FAST]?: true };
  if (s[FAST]) return schema;
  const slow = schema.safeParseAsync.bind(schema);
  Object.defineProperties(schema, {
    [FAST]: { value: true },
    safeParseAsync: {
      value: async (data: unknown, params?: Parameters<S["safeParseAsync"]>[1]) => {
        const v = fast(data);
        return v !== null ? { success: true, data: v } : slow(data, params);
      },
    },
  });
  return schema;
}
