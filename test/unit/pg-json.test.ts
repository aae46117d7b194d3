// The outbox's rows reach Postgres as one JSON text; U+0000 (which Postgres text cannot hold) is replaced
// in that text, not by copying every row. The replacement must touch real NULs only.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { rowsJson } from "../../src/lib/pg-json.ts";

/** What the rows must read as in Postgres: every U+0000 in a key or a string value replaced by U+FFFD. */
function expected(v: unknown): unknown {
  if (typeof v === "string") return v.replaceAll("\u0000", "\uFFFD");
  if (Array.isArray(v)) return v.map(expected);
  if (v && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [expected(k), expected(x)]));
  return v;
}

describe("rowsJson", () => {
  it("replaces NUL in values and keys, and nothing else", () => {
    const rows = [
      { tail: "bin\u0000ary", "k\u0000": 1, n: null },
      { tail: "\\u0000 is a backslash then u0000, not a NUL", x: "\\\u0000", y: "\\\\u0000" },
    ];
    const out = JSON.parse(rowsJson(rows));
    expect(out).toEqual(expected(rows));
    expect(out[1].tail).toBe("\\u0000 is a backslash then u0000, not a NUL");
    expect(out[1].x).toBe("\\\uFFFD");
    expect(out[1].y).toBe("\\\\u0000");
  });

  it("is JSON.stringify when there is no NUL", () => {
    const rows = [{ a: "x", b: [1, 2], c: { d: "\\u0001" } }];
    expect(rowsJson(rows)).toBe(JSON.stringify(rows));
  });

  it("reads back as the cleaned rows for any text made of backslashes, u, 0 and NUL", () => {
    const text = fc.string({ unit: fc.constantFrom("\\", "u", "0", "\u0000", "a") });
    fc.assert(
      fc.property(fc.array(fc.dictionary(text, text), { maxLength: 4 }), (rows) => {
        expect(JSON.parse(rowsJson(rows))).toEqual(expected(rows));
      }),
      { numRuns: 2000 },
    );
  });
});
