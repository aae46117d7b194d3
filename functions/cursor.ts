// Page cursors of the history lists (GET /v1/jobs, GET /v1/audit). A cursor is the (time, id) of the last
// row of a page: rows are ordered by both, so a page boundary never skips or repeats a row even when several
// share a millisecond. Base64url of UTF-8 JSON (ids are ASCII today, but btoa would throw on anything else
// and turn a bad row into a 500).
import { GantryError } from "../src/errors.ts";
import { inTimeRange } from "./schemas.ts";

export function encodeCursor(ms: number, id: string): string {
  const bytes = new TextEncoder().encode(JSON.stringify([ms, id]));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** Anything a client can send: a cursor that is not one of ours is a 400, never a query with a bad time. */
export function decodeCursor(s: string): { at: Date; id: string } {
  try {
    const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
      Uint8Array.from(bin, (ch) => ch.charCodeAt(0)),
    );
    const [ms, id] = JSON.parse(text) as [unknown, unknown];
    if (typeof ms !== "number" || typeof id !== "string") throw new Error("shape");
    // A time outside Date's range (an Invalid Date) or Postgres's (year 0, years past 9999) would fail the
    // query: a 500.
    if (!inTimeRange(ms)) throw new Error("time");
    return { at: new Date(ms), id };
  } catch {
    throw new GantryError("ValidationFailed", "cursor is not valid; use nextCursor from a previous page", [
      { path: "query.cursor", message: "invalid cursor" },
    ]);
  }
}
