// The tenant/admin API client the user-facing commands share: one base URL and bearer token, JSON in and
// out through requestJson (so errors are the same ApiError/NetworkError the agent uses), plus a raw
// streaming GET for Server-Sent Events.
import { describeError } from "./errors.ts";
import { ApiError, NetworkError, type RequestOptions, requestJson } from "./http.ts";
import { toProblem } from "./problem.ts";

export type Query = Record<string, string | number | boolean | undefined | null>;

export interface ApiOptions {
  fetch?: typeof fetch;
  userAgent?: string;
  timeoutMs?: number;
}

export interface CallOptions {
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export class Api {
  readonly baseUrl: string;
  constructor(
    baseUrl: string,
    private readonly token: string,
    private readonly opts: ApiOptions = {},
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  /** Absolute URL for a path; empty and undefined query values are left out. */
  url(path: string, query: Query = {}): string {
    const u = new URL(`${this.baseUrl}${path}`);
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, String(v));
    }
    return u.toString();
  }

  async request<T>(
    method: RequestOptions["method"],
    path: string,
    o: CallOptions = {},
  ): Promise<{ status: number; body: T }> {
    return requestJson<T>({
      method,
      url: this.url(path, o.query),
      token: this.token,
      body: o.body,
      timeoutMs: this.opts.timeoutMs ?? 30_000,
      headers: { ...(this.opts.userAgent ? { "user-agent": this.opts.userAgent } : {}), ...o.headers },
      ...(o.signal ? { signal: o.signal } : {}),
      ...(this.opts.fetch ? { fetch: this.opts.fetch } : {}),
    });
  }

  async get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return (
      await this.request<T>("GET", path, { ...(query ? { query } : {}), ...(signal ? { signal } : {}) })
    ).body;
  }

  async post<T>(path: string, body: unknown = {}, headers?: Record<string, string>): Promise<T> {
    return (await this.request<T>("POST", path, { body, ...(headers ? { headers } : {}) })).body;
  }

  async put<T>(path: string, body: unknown): Promise<T> {
    return (await this.request<T>("PUT", path, { body })).body;
  }

  async patch<T>(path: string, body: unknown): Promise<T> {
    return (await this.request<T>("PATCH", path, { body })).body;
  }

  async delete(path: string): Promise<void> {
    await this.request("DELETE", path);
  }

  /**
   * A streaming GET (Server-Sent Events): resolves once the response headers arrived, with the open
   * response; an error status becomes an ApiError with the problem the server sent.
   */
  async openStream(
    path: string,
    query: Query,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Response> {
    const url = this.url(path, query);
    let res: Response;
    try {
      res = await (this.opts.fetch ?? fetch)(url, {
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(this.opts.userAgent ? { "user-agent": this.opts.userAgent } : {}),
          ...headers,
        },
        signal,
      });
    } catch (err) {
      throw new NetworkError(`GET ${path} failed: ${describeError(err)}`, { cause: err });
    }
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: toProblem keeps the text as the detail
      }
      throw new ApiError(toProblem(res.status, res.statusText, body));
    }
    return res;
  }
}

/** Path segment for an id typed by a user: encoded so "a/b" cannot reach another route. */
export const seg = (id: string) => encodeURIComponent(id);
