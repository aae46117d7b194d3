// Page cursors of the history lists (GET /v1/jobs, GET /v1/audit). A cursor is the (time, id) of the last
// row of a page: rows are ordered by both, so a page boundary never skips or repeats a row even when several
// share a millisecond. Base64url of UTF-8 JSON (ids are ASCII today, but btoa would throw on anything else
// and turn a bad row into a 500).
import { GantryError } from "../src/errors.ts";

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
    const at = new Date(ms);
    // A time outside Date's range is an Invalid Date, which the query would throw on (a 500).
    if (Number.isNaN(at.getTime())) throw new Error("time");
    return { at, id };
  } catch {
    throw new GantryError("ValidationFailed", "cursor is not valid; use nextCursor from a previous page", [
      { path: "cursor", message: "invalid cursor" },
    ]);
  }
}
