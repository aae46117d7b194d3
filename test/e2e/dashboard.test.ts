// Issue 7's dashboard in a real browser: Debian's chromium driven by playwright-core against a real
// `wrangler dev` and a real agent. Sign in with a tenant key, submit through the API, watch the row appear
// and change state on the page without a reload, open the job's detail (events, explain, output); sign in
// as the platform admin and see the GPUs; then screenshot a populated dashboard.
//
// CI installs chromium (.ci/run). Elsewhere the test skips without it, so `npm test` still passes on a
// machine with nothing but Node and npm; set CHROMIUM_PATH to use another build.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type AgentProc,
  bootstrap,
  must,
  ROOT,
  type Server,
  startAgent,
  startServer,
  waitFor,
  waitForState,
} from "./support.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
if (!HAVE_CHROMIUM && process.env.CI) throw new Error(`CI must run the browser test: no ${CHROMIUM}`);
// The committed screenshot is rewritten only on request, so a test run leaves the work tree clean.
const SCREENSHOT = process.env.GANTRY_UPDATE_SCREENSHOT
  ? path.join(ROOT, "docs", "dashboard.png")
  : path.join(os.tmpdir(), `gantry-dashboard-${process.pid}.png`);

/** What the test leaves on `window` to prove the page never reloaded and to record a row's states. */
interface Probe {
  __noReload?: string;
  __seen?: Record<string, string[]>;
}

describe.skipIf(!HAVE_CHROMIUM)("dashboard, in a real browser", () => {
  let s: Server;
  let b: Awaited<ReturnType<typeof bootstrap>>;
  let agent: AgentProc;
  let browser: Browser;
  const problems: string[] = [];

  const submit = (job: Record<string, unknown>) =>
    must<{ id: string }>(s, "POST", "/v1/jobs", b.key, { gpus: 1, ...job });

  async function openPage(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // CSP and Trusted Types violations, and uncaught errors, surface here: none may happen.
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(m.text());
    });
    await page.goto(s.url);
    return page;
  }

  async function signIn(page: Page, key: string) {
    await page.fill("#signin-key", key);
    await page.click("#signin-form button[type=submit]");
    await page.waitForSelector("#signout:not([hidden])");
  }

  beforeAll(async () => {
    [s, browser] = await Promise.all([
      startServer({ heartbeatSeconds: 1 }),
      chromium.launch({
        executablePath: CHROMIUM,
        // A fresh temporary profile per launch (playwright's default): no state from earlier runs.
        args: [
          "--headless=new",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      }),
    ]);
    b = await bootstrap(s);
    agent = startAgent(s, b.joinToken, "fake:2xH100");
    await waitFor(
      async () =>
        (await must<{ items: { state: string }[] }>(s, "GET", "/v1/workers", s.admin)).items.some(
          (w) => w.state === "alive",
        ),
      30_000,
      "agent alive",
    );
  });
  afterAll(async () => {
    await browser?.close();
    agent?.kill("SIGKILL");
    await s?.destroy();
  });

  it("serves the page and its assets without a token, under a strict Content-Security-Policy", async () => {
    const res = await fetch(`${s.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const csp = res.headers.get("content-security-policy") ?? "";
    for (const d of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'"]) {
      expect(csp).toContain(d);
    }
    expect(csp).toContain("require-trusted-types-for 'script'");
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i); // no inline script
    expect(html).not.toMatch(/\sstyle=|<style/i); // no inline style
    expect(html).not.toMatch(/(?:src|href)=["'](?:https?:)?\/\//i); // nothing from another origin
    for (const [p, type] of [
      ["/ui/dashboard.css", "text/css"],
      ["/ui/js/main.js", "text/javascript"],
      ["/ui/js/live.js", "text/javascript"],
    ] as const) {
      const a = await fetch(`${s.url}${p}`);
      expect(a.status, p).toBe(200);
      expect(a.headers.get("content-type"), p).toContain(type);
    }
    expect((await fetch(`${s.url}/ui/js/nope.js`)).status).toBe(404);
    const doc = await must<{ paths: Record<string, unknown> }>(s, "GET", "/openapi.json");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/", "/ui/dashboard.css", "/ui/js/{file}"]),
    );
  });

  it("tenant: a submitted job appears and changes state live, without a reload; its detail explains it", async () => {
    const page = await openPage();
    await signIn(page, b.key);
    // The key is kept for this tab only and never lands in the URL.
    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem("gantry.key"),
      local: localStorage.length,
      url: location.href,
    }));
    expect(stored).toEqual({ session: b.key, local: 0, url: expect.not.stringContaining(b.key) });

    await page.click('#nav a[href="#/jobs"]');
    await page.waitForSelector("text=No jobs yet");
    await page.waitForSelector('#live[data-status="live"]');
    // Marks that a reload would wipe, and a record of every state the job's row shows.
    await page.evaluate(() => {
      const w = window as unknown as Probe;
      w.__noReload = "still here";
      w.__seen = {};
      const seen = w.__seen;
      const note = (el: Element) => {
        const id = el.getAttribute("data-job-id");
        const state = el.getAttribute("data-state");
        if (!id || !state) return;
        seen[id] ??= [];
        const list = seen[id];
        if (list[list.length - 1] !== state) list.push(state);
      };
      new MutationObserver((records) => {
        for (const r of records) {
          if (r.type === "attributes") note(r.target as Element);
          for (const n of r.addedNodes) if (n instanceof Element && n.matches("tr[data-job-id]")) note(n);
        }
      }).observe(document.querySelector("table.jobs tbody")!, {
        subtree: true,
        childList: true,
        attributes: true,
        attributeFilter: ["data-state"],
      });
    });

    // Tenant-controlled text that would be markup if it were ever inserted as HTML.
    const name = "train <i>resnet</i>";
    const job = await submit({
      name,
      command: ["sh", "-c", 'echo "epoch 1 <script>window.__owned=1</script>"; sleep 2; echo done'],
    });
    const row = `tr[data-job-id="${job.id}"]`;
    await page.waitForSelector(row, { timeout: 10_000 });
    await page.waitForSelector(`${row}[data-state="succeeded"]`, { timeout: 30_000 });

    const probe = await page.evaluate(() => {
      const w = window as unknown as Probe & { __owned?: number };
      return {
        noReload: w.__noReload,
        seen: w.__seen,
        owned: w.__owned ?? null,
        navigations: performance.getEntriesByType("navigation").length,
      };
    });
    expect(probe.noReload).toBe("still here");
    expect(probe.navigations).toBe(1);
    const states = probe.seen?.[job.id] ?? [];
    expect(states, `states the row showed: ${states.join(" → ")}`).toContain("running");
    expect(states[0]).not.toBe("succeeded"); // it appeared before it finished, then changed in place
    expect(states[states.length - 1]).toBe("succeeded");
    expect(await page.textContent(`${row} a`)).toBe(name);
    expect(await page.locator(`${row} i`).count()).toBe(0);

    await page.click(`${row} a`);
    await page.waitForSelector(`h1:text-is("${name}")`);
    await page.waitForSelector(".events tbody tr:nth-child(4)");
    const transitions = await page.locator(".events tbody tr").allTextContents();
    expect(transitions.map((t) => t.replace(/\s+/g, " "))).toEqual([
      expect.stringContaining("— → queued"),
      expect.stringContaining("queued → scheduled"),
      expect.stringContaining("scheduled → running"),
      expect.stringContaining("running → succeeded"),
    ]);
    expect(await page.textContent(".explain")).toContain("Succeeded");
    const log = await page.textContent("pre.log");
    expect(log).toContain("epoch 1 <script>window.__owned=1</script>");
    expect(log).toContain("done");
    expect(await page.evaluate(() => (window as unknown as { __owned?: number }).__owned ?? null)).toBeNull();
    expect(await page.evaluate(() => (window as unknown as Probe).__noReload)).toBe("still here");

    // Sign out forgets the key.
    await page.click("#signout");
    await page.waitForSelector("#signin:not([hidden])");
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.close();
  });

  it("falls back to polling GET /v1/events when the stream cannot be opened", async () => {
    const page = await openPage();
    // A proxy that refuses event streams: every text/event-stream request fails; JSON calls pass.
    await page.route("**/v1/events*", (route) =>
      (route.request().headers().accept ?? "").includes("text/event-stream")
        ? route.abort()
        : route.continue(),
    );
    await signIn(page, b.key);
    await page.click('#nav a[href="#/jobs"]');
    await page.waitForSelector('#live[data-status="polling"]', { timeout: 15_000 });
    const job = await submit({ name: "polled", command: ["sh", "-c", "sleep 1"] });
    await page.waitForSelector(`tr[data-job-id="${job.id}"][data-state="succeeded"]`, { timeout: 30_000 });
    expect(await page.evaluate(() => performance.getEntriesByType("navigation").length)).toBe(1);
    await page.close();
  });

  it("admin: workers with their GPUs; tenant views say they need a tenant key", async () => {
    const page = await openPage();
    await signIn(page, s.admin);
    await page.waitForSelector(".worker .gpu");
    expect(await page.locator(".worker .gpu").count()).toBe(2);
    expect(await page.textContent(".worker .gpus")).toContain("H100");
    await page.goto(`${s.url}/#/jobs`);
    await page.waitForSelector(".problem");
    expect(await page.textContent(".problem")).toContain("Sign in with a tenant API key");
    await page.close();
  });

  it("draws a pipeline run's steps as a graph, reached from one of its jobs", async () => {
    const step = (name: string, dependsOn: unknown[] = []) => ({
      name,
      job: { name: `nightly-${name}`, user: "dave", gpus: 1, command: ["true"] },
      dependsOn,
    });
    const p = await must<{ id: string }>(s, "POST", "/v1/pipelines", b.key, {
      name: "nightly-eval",
      steps: [
        step("fetch"),
        step("score", ["fetch"]),
        step("report", [{ step: "score", condition: "finished" }]),
      ],
    });
    const run = await must<{ id: string; steps: { name: string; jobId: string }[] }>(
      s,
      "POST",
      `/v1/pipelines/${p.id}/runs`,
      b.key,
      {},
    );
    const score = run.steps.find((x) => x.name === "score")!.jobId;
    await waitFor(
      async () =>
        (await must<{ state: string }>(s, "GET", `/v1/pipelines/${p.id}/runs/${run.id}`, b.key)).state ===
        "succeeded",
      30_000,
      "pipeline run to succeed",
    );

    const page = await openPage();
    await signIn(page, b.key);
    await page.goto(`${s.url}/#/jobs/${score}`);
    await page.click("text=Pipeline run");
    await page.waitForSelector("svg.dag");
    expect(await page.locator("svg.dag .node").count()).toBe(3);
    expect(await page.locator("svg.dag .edge").count()).toBe(2);
    expect(await page.locator("svg.dag .edge.cond-finished").count()).toBe(1);
    expect(await page.locator("svg.dag .node.st-succeeded").count()).toBe(3);
    // Steps sit in columns by dependency depth.
    const xs = await page
      .locator("svg.dag .node")
      .evaluateAll((els) => els.map((e) => Number(e.getAttribute("x"))));
    expect(new Set(xs).size).toBe(3);
    await page.click('svg.dag a[data-step="fetch"]');
    await page.waitForSelector('h1:text-is("nightly-fetch")');
    await page.close();
  });

  it("usage: one API call draws the hourly chart and the totals by user", async () => {
    const j = await submit({ name: "usage-probe", user: "uma", command: ["sh", "-c", "sleep 1"] });
    await waitForState(s, b.key, j.id, ["succeeded"]);
    const page = await openPage();
    const calls: string[] = [];
    page.on("request", (r) => {
      if (new URL(r.url()).pathname === "/v1/usage") calls.push(r.url());
    });
    await signIn(page, b.key);
    await page.goto(`${s.url}/#/usage`);
    await page.waitForSelector("svg.chart g.bar rect");
    // 24 hourly bars from one call (it used to be 25: the window, then each hour).
    expect(await page.locator("svg.chart g.bar").count()).toBe(24);
    expect(calls).toHaveLength(1);
    expect(new URL(calls[0]!).searchParams.get("step")).toBe("3600");
    expect(await page.locator('svg.chart rect title:text-matches("^uma ")').count()).toBeGreaterThan(0);
    expect(await page.textContent("section.card table")).toContain("uma");
    await page.close();
  });

  it("screenshots a populated dashboard", async () => {
    // A mix of states and users: finished, failed, running, waiting for GPUs, unplaceable then cancelled.
    const quick = (name: string, user: string, cmd: string) =>
      submit({ name, user, command: ["sh", "-c", cmd] });
    const done = await Promise.all([
      quick("prepare-imagenet-shards", "alice", "echo ok"),
      quick("eval-bert-large", "bob", "sleep 1"),
      quick("sweep-lr-0.003", "carol", "echo diverged; exit 3"),
    ]);
    for (const j of done) await waitForState(s, b.key, j.id, ["succeeded", "failed"]);
    const running = await quick("train-resnet50", "alice", "sleep 60");
    await waitForState(s, b.key, running.id, ["running"]);
    const waiting = await submit({
      name: "finetune-llama-8b",
      user: "bob",
      gpus: 2,
      priority: "high",
      command: ["sleep", "1"],
    });
    const nowhere = await submit({
      name: "a100-benchmark",
      user: "carol",
      gpuType: "A100",
      command: ["true"],
    });
    await must(s, "POST", `/v1/jobs/${nowhere.id}/cancel`, b.key);

    const page = await openPage();
    await signIn(page, b.key);
    // The waiting job says why: the free GPU is not enough for it.
    await page.goto(`${s.url}/#/jobs/${waiting.id}`);
    await page.waitForSelector(".explain .reason");
    expect(await page.textContent(".explain .reason")).toMatch(/InsufficientCapacity|PriorityOrFairShare/);

    await page.goto(`${s.url}/#/jobs`);
    await page.waitForSelector(`tr[data-job-id="${nowhere.id}"][data-state="cancelled"]`);
    await page.waitForSelector(`tr[data-job-id="${running.id}"][data-state="running"]`);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: SCREENSHOT });
    expect(fs.statSync(SCREENSHOT).size).toBeGreaterThan(20_000);
    await must(s, "POST", `/v1/jobs/${running.id}/cancel`, b.key);
    await page.close();
    if (!process.env.GANTRY_UPDATE_SCREENSHOT) fs.rmSync(SCREENSHOT, { force: true });
  });

  afterEach(() => {
    expect(problems, problems.join("\n")).toEqual([]);
  });
});
