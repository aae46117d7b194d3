// The dashboard's files, bundled into the Worker as text (wrangler's "Text" rule for **/*.txt): plain
// HTML, CSS and ES modules served as they are written, with no build step and nothing fetched from a CDN.
import api from "./client/api.js.txt";
import chart from "./client/chart.js.txt";
import dag from "./client/dag.js.txt";
import dom from "./client/dom.js.txt";
import format from "./client/format.js.txt";
import live from "./client/live.js.txt";
import main from "./client/main.js.txt";
import signin from "./client/signin.js.txt";
import sse from "./client/sse.js.txt";
import viewJob from "./client/view-job.js.txt";
import viewJobs from "./client/view-jobs.js.txt";
import viewQueue from "./client/view-queue.js.txt";
import viewRun from "./client/view-run.js.txt";
import viewUsage from "./client/view-usage.js.txt";
import viewWorkers from "./client/view-workers.js.txt";
import css from "./dashboard.css.txt";
import html from "./index.html.txt";

export const PAGE_HTML: string = html;
export const STYLESHEET: string = css;

/** ES modules by file name; they import each other by relative URL under /ui/js/. */
export const SCRIPTS = {
  "main.js": main,
  "api.js": api,
  "dom.js": dom,
  "format.js": format,
  "sse.js": sse,
  "live.js": live,
  "signin.js": signin,
  "chart.js": chart,
  "dag.js": dag,
  "view-queue.js": viewQueue,
  "view-jobs.js": viewJobs,
  "view-job.js": viewJob,
  "view-workers.js": viewWorkers,
  "view-usage.js": viewUsage,
  "view-run.js": viewRun,
} as const satisfies Record<string, string>;

export type ScriptName = keyof typeof SCRIPTS;
export const SCRIPT_NAMES = Object.keys(SCRIPTS) as [ScriptName, ...ScriptName[]];
