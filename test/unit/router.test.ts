// The Worker's router remembers answers per method and path; it must answer exactly as Hono's own.
import type { Result } from "hono/router";
import { RegExpRouter } from "hono/router/reg-exp-router";
import { SmartRouter } from "hono/router/smart-router";
import { TrieRouter } from "hono/router/trie-router";
import { describe, expect, it } from "vitest";
import { MemoRouter, ROUTE_MEMO_MAX } from "../../functions/router.ts";

const ROUTES: [string, string][] = [
  ["ALL", "*"],
  ["POST", "/v1/workers/register"],
  ["POST", "/v1/workers/:id/heartbeat"],
  ["POST", "/v1/workers/:id/jobs/:jobId/status"],
  ["GET", "/v1/jobs"],
  ["GET", "/v1/jobs/:id"],
  ["POST", "/v1/jobs"],
];

function build<R extends { add(m: string, p: string, h: string): void }>(r: R): R {
  for (const [m, p] of ROUTES) r.add(m, p, `${m} ${p}`);
  return r;
}

/** Handler names with their parameters, whichever of Hono's two result shapes the router gave. */
function resolved(r: Result<string>): [string, Record<string, string>][] {
  const [matches, stash] = r as [[string, Record<string, string | number>][], string[]?];
  return matches.map(([h, p]) => [
    h,
    Object.fromEntries(Object.entries(p).map(([k, v]) => [k, stash ? stash[v as number]! : String(v)])),
  ]);
}

const fresh = () => build(new SmartRouter<string>({ routers: [new RegExpRouter(), new TrieRouter()] }));

describe("MemoRouter", () => {
  const paths: [string, string][] = [
    ["POST", "/v1/workers/register"],
    ["POST", "/v1/workers/w-01-abc/heartbeat"],
    ["POST", "/v1/workers/w-02-xyz/jobs/job_1/status"],
    ["GET", "/v1/jobs"],
    ["GET", "/v1/jobs/job_9"],
    ["POST", "/v1/jobs"],
    ["DELETE", "/v1/jobs"],
    ["GET", "/nowhere"],
  ];

  it("answers as Hono's default router, with the API's static-beside-parameter routes", () => {
    const memo = build(new MemoRouter<string>());
    for (const [m, p] of paths) {
      const want = resolved(fresh().match(m, p));
      expect(resolved(memo.match(m, p)), `${m} ${p}`).toEqual(want);
      expect(resolved(memo.match(m, p)), `${m} ${p} (remembered)`).toEqual(want);
    }
    expect(resolved(memo.match("POST", "/v1/workers/w-01-abc/heartbeat"))).toEqual([
      ["ALL *", {}],
      ["POST /v1/workers/:id/heartbeat", { id: "w-01-abc" }],
    ]);
  });

  it("remembers: the same path is not walked twice", () => {
    const memo = build(new MemoRouter<string>());
    const first = memo.match("POST", "/v1/jobs");
    expect(memo.match("POST", "/v1/jobs")).toBe(first);
    expect(memo.size).toBe(1);
  });

  it("stays bounded and correct when paths never repeat", () => {
    const memo = build(new MemoRouter<string>());
    for (let i = 0; i < ROUTE_MEMO_MAX + 50; i++) {
      const r = resolved(memo.match("GET", `/v1/jobs/job_${i}`));
      if (i % 997 === 0)
        expect(r).toEqual([
          ["ALL *", {}],
          ["GET /v1/jobs/:id", { id: `job_${i}` }],
        ]);
    }
    expect(memo.size).toBeLessThanOrEqual(ROUTE_MEMO_MAX);
  });

  it("forgets what it remembered when a route is added", () => {
    const memo = build(new MemoRouter<string>(new TrieRouter()));
    expect(resolved(memo.match("GET", "/v1/queue"))).toEqual([["ALL *", {}]]);
    memo.add("GET", "/v1/queue", "GET /v1/queue");
    expect(resolved(memo.match("GET", "/v1/queue"))).toEqual([
      ["ALL *", {}],
      ["GET /v1/queue", {}],
    ]);
  });
});
