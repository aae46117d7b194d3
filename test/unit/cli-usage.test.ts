import { describe, expect, it } from "vitest";
import { renderUsage, type UsageReport } from "../../cli/commands/usage.ts";

const row = (user: string, gpuSeconds: number, gpuType = "H100") => ({ user, gpuType, gpuSeconds, jobs: 1 });

describe("gantry usage rendering", () => {
  const report: UsageReport = {
    from: "2026-11-21T00:00:00.000Z",
    to: "2026-11-21T02:00:00.000Z",
    totalGpuSeconds: 10_800,
    items: [row("alice", 7200), row("bob", 3600, "A100")],
  };

  it("without --step: the totals table only", () => {
    const out = renderUsage(report);
    expect(out).toMatch(/^Usage from 2026-11-21T00:00:00.000Z to 2026-11-21T02:00:00.000Z: 3.00 GPU-hours\n/);
    expect(out).toMatch(/alice\s+H100\s+1\s+2h00m\s+2.00/);
    expect(out).not.toContain("PERIOD");
  });

  it("with --step: a row per period, its users largest first (GPU types of a user summed)", () => {
    const out = renderUsage({
      ...report,
      buckets: [
        {
          from: "2026-11-21T00:00:00.000Z",
          to: "2026-11-21T01:00:00.000Z",
          totalGpuSeconds: 5400,
          items: [row("bob", 1800, "A100"), row("alice", 1800), row("bob", 1800)],
        },
        { from: "2026-11-21T01:00:00.000Z", to: "2026-11-21T02:00:00.000Z", totalGpuSeconds: 0, items: [] },
      ],
    });
    const lines = out.split("\n");
    const header = lines.findIndex((l) => /^PERIOD\s+GPU-HOURS\s+BY USER/.test(l));
    expect(header).toBeGreaterThan(0);
    expect(lines[header + 1]).toMatch(/^2026-11-21T00:00:00.000Z\s+1.50\s+bob 1.00, alice 0.50$/);
    expect(lines[header + 2]).toMatch(/^2026-11-21T01:00:00.000Z\s+0.00\s+-$/); // an empty cell reads "-"
  });

  it("an empty window says so, with or without periods", () => {
    expect(renderUsage({ ...report, totalGpuSeconds: 0, items: [], buckets: [] })).toContain(
      "No GPU time used in this window.",
    );
  });
});
