// The submit route's optional Idempotency-Key header. Validated by hand, not as `request.headers`: that
// validator copies every request header into an object for this one header, on the busiest route. Same
// zod schema (registered as an OpenAPI parameter by the route), same 400 through validationHook.
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { HonoEnv } from "./hono-env.ts";
import { validationHook } from "./validation.ts";

export const IdempotencyKeySchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces")
  .openapi({
    param: { name: "Idempotency-Key", in: "header", required: false },
    description: "Same key within 24 h returns the first job (200), never a second one",
  });

const Header = z.object({ "idempotency-key": IdempotencyKeySchema });

/** The key, or null without the header; a malformed one is a 400 naming `header.idempotency-key`. */
export function idempotencyKey(c: Context<HonoEnv>): string | null {
  const given = c.req.header("idempotency-key");
  if (given === undefined) return null;
  const r = Header.safeParse({ "idempotency-key": given });
  if (!r.success) validationHook({ ...r, target: "header" }, c);
  return given;
}
