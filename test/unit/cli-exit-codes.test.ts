// Exit codes and error messages of the gantry CLI: every API failure maps onto the documented code and
// carries a hint that says what to do.
import { describe, expect, it } from "vitest";
import { describeFailure, type HintContext } from "../../cli/commands/errors.ts";
import { EXIT, exitCodeForError, exitCodeForStatus } from "../../cli/lib/exit-codes.ts";
import { ApiError, NetworkError } from "../../cli/lib/http.ts";
import { toProblem } from "../../cli/lib/problem.ts";

const apiError = (status: number, body: Record<string, unknown> = {}, retryAfterMs?: number) =>
  new ApiError(toProblem(status, "", { title: `HTTP ${status}`, status, ...body }), retryAfterMs);

const ctx: HintContext = { command: "jobs", role: "tenant", url: "http://cp", profile: "default" };

describe("exit codes", () => {
  it.each([
    [400, undefined, EXIT.usage],
    [413, undefined, EXIT.usage],
    [401, "Unauthorized", EXIT.auth],
    [403, "Forbidden", EXIT.auth],
    [403, "PolicyDenied", EXIT.conflict],
    [404, "NotFound", EXIT.notFound],
    [409, "InvalidTransition", EXIT.conflict],
    [409, "QuotaExceeded", EXIT.conflict],
    [429, "RateLimited", EXIT.unavailable],
    [500, "Internal", EXIT.unavailable],
    [503, "DatabaseUnavailable", EXIT.unavailable],
  ])("HTTP %d %s exits %d", (status, code, exit) => {
    expect(exitCodeForStatus(status, code)).toBe(exit);
    expect(exitCodeForError(apiError(status, code ? { code } : {}))).toBe(exit);
  });

  it("no answer at all is 6; anything else 1", () => {
    expect(exitCodeForError(new NetworkError("ECONNREFUSED"))).toBe(EXIT.unavailable);
    expect(exitCodeForError(new Error("?"))).toBe(EXIT.failed);
  });

  it("the documented numbers do not move", () => {
    expect(EXIT).toEqual({
      ok: 0,
      failed: 1,
      usage: 2,
      auth: 3,
      notFound: 4,
      conflict: 5,
      unavailable: 6,
      interrupted: 130,
    });
  });
});

describe("error messages", () => {
  it("401: title, code and detail, then how to log in again", () => {
    const lines = describeFailure(apiError(401, { code: "Unauthorized", detail: "token is not valid" }), {
      ...ctx,
      tokenSource: "GANTRY_KEY",
    });
    expect(lines[0]).toBe("gantry jobs: HTTP 401 (Unauthorized): token is not valid");
    expect(lines[1]).toMatch(/^hint: .*\(from GANTRY_KEY\).*gantry login --url URL --key KEY/);
  });

  it("403 on an admin command names the admin token; a policy denial lists the matched policies", () => {
    expect(describeFailure(apiError(403, { code: "Forbidden" }), { ...ctx, role: "admin" }).at(-1)).toMatch(
      /platform admin token.*GANTRY_ADMIN_TOKEN/,
    );
    const denied = apiError(403, {
      code: "PolicyDenied",
      detail: "at most 8 GPUs",
      decisions: [
        { name: "max-8", effect: "deny", matched: true, message: "at most 8 GPUs" },
        { name: "other", effect: "deny", matched: false, message: null },
      ],
    });
    const lines = describeFailure(denied, { ...ctx, command: "submit" });
    expect(lines).toContain('  policy "max-8" (deny): at most 8 GPUs');
    expect(lines.join("\n")).not.toContain("other");
    expect(lines.at(-1)).toMatch(/gantry policies evaluate/);
  });

  it("field errors are listed once; 404 uses the command's hint; 409 explains the conflict", () => {
    const v = apiError(400, {
      code: "ValidationFailed",
      detail: "gpus: too big",
      errors: [
        { path: "gpus", message: "too big" },
        { path: "name", message: "required" },
      ],
    });
    expect(describeFailure(v, { ...ctx, command: "submit" })).toEqual([
      "gantry submit: HTTP 400 (ValidationFailed): gpus: too big",
      "  name: required",
      "hint: see 'gantry submit --help' for the accepted values",
    ]);
    expect(describeFailure(apiError(404, { code: "NotFound" }), { ...ctx, notFound: "try X" }).at(-1)).toBe(
      "hint: try X",
    );
    expect(describeFailure(apiError(409, { code: "InvalidTransition" }), ctx).at(-1)).toMatch(
      /already finished/,
    );
  });

  it("outages say where the CLI tried to connect; 429 says when to retry; 5xx quotes the request id", () => {
    expect(describeFailure(new NetworkError("GET http://cp/v1/jobs failed: ECONNREFUSED"), ctx)).toEqual([
      "gantry jobs: GET http://cp/v1/jobs failed: ECONNREFUSED",
      "hint: is the control plane running at http://cp? Check the address with 'gantry login --url URL --key KEY' or GANTRY_URL",
    ]);
    expect(describeFailure(apiError(429, { code: "RateLimited" }, 2500), ctx).at(-1)).toBe(
      "hint: rate limited: try again in 3 s",
    );
    expect(describeFailure(apiError(500, { code: "Internal", requestId: "req-1" }), ctx).at(-1)).toMatch(
      /quote request id req-1/,
    );
  });
});
