// docs/scale.md's model, run as a suite so its figures sit beside the measured ones.

import { atMost, fig, type SuiteResult } from "../lib/result.ts";
import { scaleReport } from "../scale-sim.ts";

export async function benchScale(): Promise<SuiteResult> {
  const r = scaleReport();
  return {
    suite: "scale",
    title: "Scale model: 100k GPUs, 10k workers, 1M queued jobs, 1,000 tenants (bench/scale-sim.ts)",
    measuredAt: new Date().toISOString(),
    method: r.method,
    figures: r.figures.map((f) =>
      fig(
        f.id,
        f.label,
        f.value,
        f.unit,
        f.limit ? { target: atMost(f.limit), note: f.note } : { note: f.note },
      ),
    ),
    noise: [],
    notes: r.notes,
    details: r.details,
  };
}
