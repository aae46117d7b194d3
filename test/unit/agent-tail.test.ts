// The 64 KiB output tail: bounded, UTF-8 safe at the cut, exact when everything fits.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LOG_TAIL_BYTES, OutputTail, utf8Tail } from "../../cli/agent/tail.ts";

describe("OutputTail", () => {
  it("keeps everything while under the capacity", () => {
    const t = new OutputTail(16);
    t.push(Buffer.from("hello "));
    t.push(Buffer.from("world"));
    expect(t.text()).toBe("hello world");
    expect(t.bytesSeen).toBe(11);
  });

  it("keeps exactly the last capacity bytes", () => {
    const t = new OutputTail(10);
    for (const c of ["0123", "4567", "89ab", "cdef"]) t.push(Buffer.from(c));
    expect(t.text()).toBe("6789abcdef");
  });

  it("handles one chunk larger than the capacity", () => {
    const t = new OutputTail(4);
    t.push(Buffer.from("abc"));
    t.push(Buffer.from("0123456789"));
    expect(t.text()).toBe("6789");
  });

  it("defaults to 64 KiB", () => {
    const t = new OutputTail();
    t.push(Buffer.alloc(LOG_TAIL_BYTES * 3, "x"));
    t.push(Buffer.from("END"));
    const text = t.text();
    expect(text.length).toBe(LOG_TAIL_BYTES);
    expect(text.endsWith("xEND")).toBe(true);
  });

  it("never starts in the middle of a multi-byte character", () => {
    const t = new OutputTail(5);
    t.push(Buffer.from("a€€")); // € is 3 bytes: a + 6 bytes; the cut lands inside the first €
    expect(t.text()).toBe("€");
  });

  it("stays within the limit when invalid bytes become U+FFFD", () => {
    const text = utf8Tail(Buffer.from([0xff, 0xfe, 0xff, 0xfe]), 4);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(4);
  });

  it("property: at most capacity bytes, a suffix of valid input, and all of it when it fits", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: "binary", maxLength: 40 }), { maxLength: 20 }),
        fc.integer({ min: 4, max: 64 }),
        (parts, cap) => {
          const t = new OutputTail(cap);
          for (const p of parts) t.push(Buffer.from(p, "utf8"));
          const all = parts.join("");
          const text = t.text();
          expect(Buffer.byteLength(text)).toBeLessThanOrEqual(cap);
          expect(all.endsWith(text)).toBe(true);
          if (Buffer.byteLength(all) <= cap) expect(text).toBe(all);
          else expect(Buffer.byteLength(text)).toBeGreaterThan(cap - 4);
        },
      ),
    );
  });

  it("property: arbitrary bytes always give at most capacity bytes of valid text", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 1, max: 64 }), (bytes, cap) => {
        const text = utf8Tail(Buffer.from(bytes), cap);
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(cap);
        expect(Buffer.from(text, "utf8").toString("utf8")).toBe(text);
      }),
    );
  });
});
