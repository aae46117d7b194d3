// `npm run bench [-- suite...] [--quick]`: runs the benchmarks against a real `wrangler dev` (through
// db/launcher.ts), stores raw results under bench/out/ and regenerates BENCHMARKS.md.
import fs from "node:fs";
import path from "node:path";
import { machineInfo, ROOT } from "./lib/machine.ts";
import { loadResults, renderReport, storeResult } from "./lib/report.ts";
import { met, type SuiteResult } from "./lib/result.ts";
import { benchArray } from "./suites/array.ts";
import { benchDispatch } from "./suites/dispatch.ts";
import { benchPlacement } from "./suites/placement.ts";
import { benchPolicySuite } from "./suites/policy.ts";
import { benchScale } from "./suites/scale.ts";
import { benchSubmit } from "./suites/submit.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const SUITES: Record<string, () => Promise<SuiteResult>> = {
  policy: () => benchPolicySuite(),
  scale: () => benchScale(),
  placement: () => benchPlacement({ rounds: quick ? 5 : 20 }),
  submit: () =>
    benchSubmit({
      seconds: quick ? 4 : 10,
      warmupSeconds: quick ? 1 : 3,
      connections: 50,
      // The machine's speed drifts by ±25 % within a minute here: five rounds, the median one reported.
      rounds: quick ? 1 : Number(process.env.BENCH_SUBMIT_ROUNDS ?? 5),
    }),
  dispatch: () =>
    benchDispatch({
      workers: quick ? 100 : 300,
      gpusPerWorker: 8,
      jobs: quick ? 1500 : 6000,
      concurrency: 64,
      latencyRate: 50,
      latencySeconds: quick ? 4 : 10,
      arraySize: 100,
      arrays: quick ? 15 : 60,
      heartbeatSeconds: 10,
      stormSeconds: quick ? 4 : 10,
      submitSeconds: quick ? 4 : 10,
    }),
  array: () =>
    benchArray({
      sizes: [1_000, 10_000],
      calls: quick ? 3 : 8,
      concurrency: 2,
      singleSeconds: quick ? 4 : 10,
    }),
};

const unknown = args.filter((a) => !a.startsWith("--") && !SUITES[a]);
if (unknown.length) {
  console.error(`unknown suite(s): ${unknown.join(", ")}; known: ${Object.keys(SUITES).join(", ")}`);
  process.exit(2);
}
const chosen = args.filter((a) => !a.startsWith("--"));
// `--report`: only regenerate BENCHMARKS.md from bench/out/results.json (e.g. after editing analysis.md).
const run = args.includes("--report") ? [] : chosen.length ? chosen : Object.keys(SUITES);
const command = `npm run bench${args.length ? ` -- ${args.join(" ")}` : ""}`;

let failed = 0;
for (const name of run) {
  const machine = machineInfo();
  process.stderr.write(`\n[bench] ${name} (load average ${machine.loadAverage.join(" ")})\n`);
  const t0 = Date.now();
  try {
    const result = await SUITES[name]!();
    storeResult({ result, machine, command, quick });
    for (const f of result.figures) {
      const m = met(f);
      process.stderr.write(
        `  ${f.label}: ${f.value} ${f.unit}${m === null ? "" : m ? "  (MET)" : "  (NOT MET)"}\n`,
      );
    }
    process.stderr.write(`[bench] ${name} done in ${Math.round((Date.now() - t0) / 1000)} s\n`);
  } catch (e) {
    failed++;
    process.stderr.write(
      `[bench] ${name} FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
  }
}
fs.writeFileSync(path.join(ROOT, "BENCHMARKS.md"), renderReport(loadResults()));
process.stderr.write(`\n[bench] wrote BENCHMARKS.md and bench/out/\n`);
process.exit(failed ? 1 : 0);
