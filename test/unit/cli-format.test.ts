// Pure formatting pieces of the gantry CLI: durations in and out, relative times, aligned tables.
import { describe, expect, it } from "vitest";
import { gpuShape, transitionLine } from "../../cli/commands/render-jobs.ts";
import { quote } from "../../cli/commands/show.ts";
import { formatAgo, formatDuration, parseDuration, parseTimePoint } from "../../cli/lib/duration.ts";
import { renderKeyValues, renderTable, truncate } from "../../cli/lib/table.ts";

describe("parseDuration", () => {
  it.each([
    ["90", 90],
    ["90s", 90],
    ["10m", 600],
    ["2h", 7200],
    ["1h30m", 5400],
    ["1d", 86_400],
    ["1w", 604_800],
    ["1.5h", 5400],
    ["250ms", 0.25],
    [" 2H ", 7200],
  ])("%s is %d seconds", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(["", "h", "10x", "1h 30m", "m10", "-5s", "10m5", "1h-2m"])("rejects %j", (text) => {
    expect(parseDuration(text)).toBeNull();
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0s"],
    [45, "45s"],
    [59.6, "1m00s"],
    [192, "3m12s"],
    [7500, "2h05m"],
    [273_600, "3d04h"],
  ])("%d s is %s", (s, text) => {
    expect(formatDuration(s)).toBe(text);
  });
});

describe("formatAgo", () => {
  const now = Date.parse("2026-01-01T12:00:00Z");
  it.each([
    ["2026-01-01T12:00:00Z", "just now"],
    ["2026-01-01T11:59:48Z", "12s ago"],
    ["2026-01-01T11:57:00Z", "3m ago"],
    ["2026-01-01T09:30:00Z", "2h ago"],
    ["2025-12-28T12:00:00Z", "4d ago"],
    ["2026-01-01T12:05:00Z", "in 5m"],
  ])("%s is %s", (iso, text) => {
    expect(formatAgo(iso, now)).toBe(text);
  });

  it("shows a dash for no time", () => {
    expect(formatAgo(null, now)).toBe("-");
    expect(formatAgo("not a date", now)).toBe("-");
  });
});

describe("parseTimePoint", () => {
  const now = Date.parse("2026-01-10T00:00:00Z");
  it("reads dates, date-times and durations ago", () => {
    expect(parseTimePoint("2026-01-01", now)).toBe("2026-01-01T00:00:00.000Z");
    expect(parseTimePoint("2026-01-01T08:30:00+01:00", now)).toBe("2026-01-01T07:30:00.000Z");
    expect(parseTimePoint("7d", now)).toBe("2026-01-03T00:00:00.000Z");
    expect(parseTimePoint("12h", now)).toBe("2026-01-09T12:00:00.000Z");
  });
  it("refuses anything else, bare numbers included (seconds or a year?)", () => {
    expect(parseTimePoint("yesterday", now)).toBeNull();
    expect(parseTimePoint("2026", now)).toBeNull();
    expect(parseTimePoint("2026-13-45", now)).toBeNull();
  });
});

describe("renderTable", () => {
  const rows = [
    { id: "job_1", name: "train", gpus: 8, exit: null },
    { id: "job_22", name: "a\nb", gpus: 1, exit: 3 },
  ];
  const cols = [
    { header: "id", value: (r: (typeof rows)[number]) => r.id },
    { header: "name", value: (r: (typeof rows)[number]) => r.name },
    { header: "gpus", value: (r: (typeof rows)[number]) => r.gpus, right: true },
    { header: "exit", value: (r: (typeof rows)[number]) => r.exit, right: true },
  ];

  it("aligns columns under upper-case headers, numbers to the right, empty cells as dashes", () => {
    expect(renderTable(cols, rows)).toBe(
      ["ID      NAME   GPUS  EXIT", "job_1   train     8     -", "job_22  a b       1     3", ""].join("\n"),
    );
  });

  it("never leaves trailing spaces and keeps every row on one line", () => {
    const out = renderTable([cols[0]!, cols[1]!], rows);
    for (const line of out.split("\n")) expect(line).toBe(line.trimEnd());
    expect(out.split("\n")).toHaveLength(rows.length + 2);
  });

  it("truncates long cells with an ellipsis, counting characters not bytes", () => {
    expect(truncate("abcdefgh", 5)).toBe("abcd…");
    expect(truncate("abc", 5)).toBe("abc");
    const out = renderTable([{ header: "x", value: () => "→".repeat(10), max: 4 }], [1]);
    expect(out).toBe("X\n→→→…\n");
  });
});

describe("renderKeyValues", () => {
  it("aligns values, drops undefined entries, continues empty keys and multi-line values", () => {
    expect(
      renderKeyValues([
        ["Job", "job_1"],
        ["Skipped", undefined],
        ["Reason", "Backoff"],
        ["", "retry 1 of 2"],
        ["Warnings", "a\nb"],
        ["Exit code", null],
      ]),
    ).toBe(
      [
        "Job:        job_1",
        "Reason:     Backoff",
        "            retry 1 of 2",
        "Warnings:   a",
        "            b",
        "Exit code:  -",
        "",
      ].join("\n"),
    );
  });
});

describe("job rendering", () => {
  it("shows the GPU shape with its type when known", () => {
    expect(gpuShape({ gpus: 2, gpuType: "H100", assignedGpuType: null })).toBe("2xH100");
    expect(gpuShape({ gpus: 1, gpuType: null, assignedGpuType: "A100" })).toBe("1xA100");
    expect(gpuShape({ gpus: 4, gpuType: null, assignedGpuType: null })).toBe("4");
  });

  it("prints a transition without repeating what the state already says", () => {
    const base = {
      seq: 3,
      jobId: "job_1",
      at: new Date(2026, 0, 1, 14, 2, 11).toISOString(),
      attempt: 1,
      lease: 1,
      workerId: "w-1",
      job: { name: "train", user: "alice", priority: "normal", gpus: 1, gpuType: null, arrayId: null },
    };
    expect(
      transitionLine(
        {
          ...base,
          from: "running",
          to: "failed",
          reason: "Failed",
          message: "exited with code 3",
          exitCode: 3,
        },
        true,
      ),
    ).toBe("14:02:11  job_1  train  running → failed  exited with code 3");
    expect(
      transitionLine(
        {
          ...base,
          from: "running",
          to: "failed",
          reason: "Timeout",
          message: null,
          exitCode: 137,
          attempt: 2,
        },
        false,
      ),
    ).toBe("14:02:11  running → failed  Timeout, exit 137, attempt 2");
    expect(
      transitionLine(
        { ...base, from: null, to: "queued", reason: "Submitted", message: null, exitCode: null },
        false,
      ),
    ).toBe("14:02:11  new → queued");
  });

  it("quotes command arguments so they can be pasted back into a shell", () => {
    expect(["python", "train.py", "--lr=0.1", "a b", "it's"].map(quote).join(" ")).toBe(
      "python train.py --lr=0.1 'a b' 'it'\\''s'",
    );
  });
});
