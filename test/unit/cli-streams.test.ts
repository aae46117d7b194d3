// Streaming pieces of the gantry CLI: the Server-Sent Events parser (chunks split anywhere) and the
// new-output computation of `logs --follow` over a sliding 64 KiB window.
import { describe, expect, it } from "vitest";
import { longestSuffixPrefix, newOutput } from "../../cli/lib/log-tail.ts";
import { SseParser } from "../../cli/lib/sse.ts";

const STREAM =
  "retry: 2000\n: gantry events for tenant acme\n\n" +
  'id: 1\nevent: job\ndata: {"seq":1}\n\n' +
  ": keep-alive\n\n" +
  'id: 2\r\nevent: job\r\ndata: {"seq":2}\r\n\r\n' +
  "data: line one\ndata: line two\n\n";

describe("SseParser", () => {
  const expected = [
    { id: "1", event: "job", data: '{"seq":1}' },
    { id: "2", event: "job", data: '{"seq":2}' },
    { id: "2", event: "message", data: "line one\nline two" },
  ];

  it("parses events, ids, multi-line data, comments and retry", () => {
    const p = new SseParser();
    expect(p.push(STREAM)).toEqual(expected);
    expect(p.retryMs).toBe(2000);
  });

  it("gives the same events however the stream is split (CRLF across chunks included)", () => {
    for (let size = 1; size <= 7; size++) {
      const p = new SseParser();
      const got = [];
      for (let i = 0; i < STREAM.length; i += size) got.push(...p.push(STREAM.slice(i, i + size)));
      expect(got).toEqual(expected);
    }
  });

  it("holds back an event until its blank line arrives", () => {
    const p = new SseParser();
    expect(p.push('id: 5\nevent: job\ndata: {"a":1}\n')).toEqual([]);
    expect(p.push("\n")).toEqual([{ id: "5", event: "job", data: '{"a":1}' }]);
  });
});

describe("logs --follow output", () => {
  it("prints only what was appended", () => {
    expect(newOutput("", "a\n")).toEqual({ text: "a\n", gap: false });
    expect(newOutput("a\n", "a\nb\n")).toEqual({ text: "b\n", gap: false });
    expect(newOutput("a\nb\n", "a\nb\n")).toEqual({ text: "", gap: false });
  });

  it("finds the overlap when the window slid", () => {
    const lines = Array.from({ length: 100 }, (_, i) => `line ${i}\n`);
    const window = (from: number, to: number) => lines.slice(from, to).join("");
    expect(newOutput(window(0, 50), window(30, 80))).toEqual({ text: window(50, 80), gap: false });
  });

  it("reports a gap when more than a whole window arrived in between", () => {
    const d = newOutput("old 1\nold 2\n", "new 1\nnew 2\n");
    expect(d).toEqual({ text: "new 1\nnew 2\n", gap: true });
  });

  it("computes the overlap of 64 KiB windows quickly", () => {
    const chunk = "x".repeat(1000);
    const a = `${"a".repeat(65_536 - 1000)}${chunk}`;
    const b = `${chunk}${"b".repeat(65_536 - 1000)}`;
    const started = performance.now();
    expect(longestSuffixPrefix(a, b)).toBe(1000);
    expect(performance.now() - started).toBeLessThan(200);
    expect(longestSuffixPrefix("abcab", "abx")).toBe(2);
    expect(longestSuffixPrefix("aaaa", "aa")).toBe(2);
    expect(longestSuffixPrefix("", "a")).toBe(0);
  });
});
