// The generic CLI helpers the agent is built on: JSON logs without secrets, problem+json handling,
// Retry-After, backoff.
import { describe, expect, it } from "vitest";
import { Backoff, setLongTimeout } from "../../cli/lib/backoff.ts";
import { ApiError, isRetryable, NetworkError, parseRetryAfter, requestJson } from "../../cli/lib/http.ts";
import { createLogger } from "../../cli/lib/log.ts";
import { formatProblem, toProblem } from "../../cli/lib/problem.ts";

describe("logger", () => {
  it("writes one JSON object per line with t, level, msg and fields; filters by level", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "info", write: (l) => lines.push(l), now: () => new Date(0) });
    log.debug("hidden");
    log.info("hello", { jobId: "j1" });
    log.child({ workerId: "w1" }).warn("careful", { n: 2 });
    expect(lines).toEqual([
      '{"t":"1970-01-01T00:00:00.000Z","level":"info","msg":"hello","jobId":"j1"}\n',
      '{"t":"1970-01-01T00:00:00.000Z","level":"warn","msg":"careful","workerId":"w1","n":2}\n',
    ]);
  });

  it("never prints credentials, whatever the field is called", () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l) });
    log.error("x", {
      token: "s1",
      joinToken: "s2",
      authorization: "Bearer s3",
      apiKey: "s4",
      err: new Error("e"),
    });
    const rec = JSON.parse(lines[0]!);
    expect(lines[0]).not.toMatch(/s1|s2|s3|s4/);
    expect(rec.err).toEqual({ message: "e" });
  });
});

describe("problem+json", () => {
  it("keeps RFC 9457 fields and formats them in one line", () => {
    const p = toProblem(409, "Conflict", {
      type: "t",
      title: "Conflict",
      status: 409,
      detail: "lease 3 < 4",
      code: "StaleLease",
    });
    expect(formatProblem(p)).toBe("Conflict (StaleLease): lease 3 < 4");
  });

  it("survives non-problem bodies from proxies", () => {
    const p = toProblem(502, "Bad Gateway", "<html>bad gateway</html>");
    expect(p).toMatchObject({ status: 502, title: "Bad Gateway", type: "about:blank" });
    expect(formatProblem(p)).toBe("Bad Gateway: <html>bad gateway</html>");
  });
});

describe("http", () => {
  it("turns error responses into ApiError with the problem and Retry-After", async () => {
    const fakeFetch = (async () =>
      new Response(JSON.stringify({ title: "Too Many Requests", status: 429, code: "RateLimited" }), {
        status: 429,
        headers: { "retry-after": "2" },
      })) as typeof fetch;
    const err = await requestJson({ method: "POST", url: "http://x/y", fetch: fakeFetch }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.problem.code).toBe("RateLimited");
    expect(err.retryAfterMs).toBe(2000);
    expect(isRetryable(err)).toBe(true);
  });

  it("sends the bearer token and JSON body", async () => {
    let seen: RequestInit | undefined;
    const fakeFetch = (async (_u: string, init: RequestInit) => {
      seen = init;
      return new Response('{"ok":true}', { status: 200 });
    }) as unknown as typeof fetch;
    const res = await requestJson({
      method: "POST",
      url: "http://x",
      token: "tok",
      body: { a: 1 },
      fetch: fakeFetch,
    });
    expect(res.body).toEqual({ ok: true });
    expect((seen!.headers as Record<string, string>).authorization).toBe("Bearer tok");
    expect(seen!.body).toBe('{"a":1}');
  });

  it("reports connection failures as retryable NetworkErrors", async () => {
    const err = await requestJson({ method: "GET", url: "http://127.0.0.1:9/none", timeoutMs: 2000 }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(NetworkError);
    expect(isRetryable(err)).toBe(true);
    expect(isRetryable(new ApiError(toProblem(400, "Bad Request", undefined)))).toBe(false);
  });

  it("parses Retry-After as seconds or a date", () => {
    expect(parseRetryAfter("3")).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe("backoff", () => {
  it("grows exponentially up to the cap and resets", () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000]);
    b.reset();
    expect(b.next()).toBe(100);
  });

  it("jitter stays within the configured fraction below the base", () => {
    const low = new Backoff({ initialMs: 1000, maxMs: 1000, jitter: 0.5 }, () => 0);
    const high = new Backoff({ initialMs: 1000, maxMs: 1000, jitter: 0.5 }, () => 0.999);
    expect(low.next()).toBe(500);
    expect(high.next()).toBeLessThanOrEqual(1000);
  });

  it("setLongTimeout does not fire early for delays beyond setTimeout's range", async () => {
    let fired = false;
    const cancel = setLongTimeout(
      () => {
        fired = true;
      },
      30 * 24 * 3600 * 1000,
    );
    await new Promise((r) => setTimeout(r, 20));
    cancel();
    expect(fired).toBe(false);
  });
});
