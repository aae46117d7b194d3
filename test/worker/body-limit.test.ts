// Request bodies over 64 KiB are refused with 413 before any handler runs, whether the client declares a
// Content-Length or streams the body without one (the limit is then counted as the bytes arrive).
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BODY_LIMIT } from "../../functions/gateway.ts";
import worker from "../../src/index.ts";
import { api, createTenant, env } from "./helpers.ts";

/** POST /v1/jobs with the body streamed in 1 KiB chunks: no Content-Length reaches the Worker. */
async function submitStreamed(key: string, text: string) {
  const bytes = new TextEncoder().encode(text);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 1024) controller.enqueue(bytes.slice(i, i + 1024));
      controller.close();
    },
  });
  const req = new Request("https://gantry.test/v1/jobs", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: stream,
  });
  expect(req.headers.get("content-length")).toBeNull();
  const ctx = createExecutionContext();
  const r = await worker.fetch(req, env, ctx);
  const body = (await r.json()) as { code?: string; id?: string; name?: string };
  await waitOnExecutionContext(ctx);
  return { status: r.status, body };
}

const queued = async (key: string) =>
  (await api<{ counts: { byState: { queued: number } } }>("GET", "/v1/queue", { token: key })).body.counts
    .byState.queued;

describe("request body limit", () => {
  const job = (pad: number) =>
    JSON.stringify({
      name: "big",
      command: ["true"],
      gpus: 1,
      gpuType: "NOWHERE",
      labels: { pad: "" },
    }).replace('"pad":""', `"pad":"${"x".repeat(pad)}"`);

  it("refuses a streamed body past the limit with 413, and creates nothing", async () => {
    const t = await createTenant();
    const r = await submitStreamed(t.memberKey, job(BODY_LIMIT));
    expect(r.status).toBe(413);
    expect(r.body.code).toBe("PayloadTooLarge");
    expect(await queued(t.memberKey)).toBe(0);
  });

  it("passes a streamed body under the limit through intact", async () => {
    const t = await createTenant();
    const r = await submitStreamed(t.memberKey, job(10).replace('"big"', '"streamed"'));
    expect(r.status).toBe(201);
    expect(r.body.name).toBe("streamed");
    expect(await queued(t.memberKey)).toBe(1);
  });

  it("refuses a declared Content-Length past the limit with 413, and creates nothing", async () => {
    const t = await createTenant();
    const r = await api("POST", "/v1/jobs", { token: t.memberKey, raw: job(BODY_LIMIT) });
    expect(r.status).toBe(413);
    expect(await queued(t.memberKey)).toBe(0);
  });
});
