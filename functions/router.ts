// The Worker's router: Hono's default (RegExpRouter, else TrieRouter) with its answers remembered per
// method and path.
//
// Why: RegExpRouter cannot hold a static segment and a parameter at the same place for one method, and
// `POST /v1/workers/register` next to `POST /v1/workers/:id/heartbeat` (both in the product's API) is
// exactly that. Hono then falls back to TrieRouter, whose walk was 4 % of a submit's Worker time. Hot
// paths repeat (one path per route for submits, one per worker for heartbeats and reports), so a lookup
// table in front makes the walk rare. Results are read-only to Hono (RegExpRouter itself hands out
// shared arrays), so handing the same one out again is safe.
import type { Result, Router } from "hono/router";
import { RegExpRouter } from "hono/router/reg-exp-router";
import { SmartRouter } from "hono/router/smart-router";
import { TrieRouter } from "hono/router/trie-router";

/** Distinct method + path pairs remembered; past this the table starts over (ids make paths unbounded). */
export const ROUTE_MEMO_MAX = 10_000;

export class MemoRouter<T> implements Router<T> {
  readonly name: string;
  private memo = new Map<string, Result<T>>();

  constructor(
    private inner: Router<T> = new SmartRouter({ routers: [new RegExpRouter(), new TrieRouter()] }),
  ) {
    this.name = `MemoRouter(${inner.name})`;
  }

  add(method: string, path: string, handler: T): void {
    this.memo.clear();
    this.inner.add(method, path, handler);
  }

  match(method: string, path: string): Result<T> {
    const key = `${method} ${path}`;
    let r = this.memo.get(key);
    if (r === undefined) {
      r = this.inner.match(method, path);
      if (this.memo.size >= ROUTE_MEMO_MAX) this.memo.clear();
      this.memo.set(key, r);
    }
    return r;
  }

  /** Entries remembered (tests). */
  get size(): number {
    return this.memo.size;
  }
}
