// The gantry CLI's command lines: a job described by flags and "-- CMD", quota specs, and the common
// parsing every command shares (unknown flags and bad values are usage errors, exit 2).
import { describe, expect, it } from "vitest";
import { formatQuota, parseGpuQuota } from "../../cli/commands/admin/quota.ts";
import { COMMON_FLAGS } from "../../cli/commands/context.ts";
import {
  buildSubmission,
  JOB_FLAGS,
  parseAfter,
  parseEnvPairs,
  splitCommand,
} from "../../cli/commands/job-spec.ts";
import { normalizeUrl } from "../../cli/commands/login.ts";
import { parseFlags } from "../../cli/lib/args.ts";
import { UsageError } from "../../cli/lib/errors.ts";

const FLAGS = { ...COMMON_FLAGS, ...JOB_FLAGS, wait: { type: "boolean" } } as const;

function submission(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const { flags, command } = splitCommand(argv);
  return buildSubmission(parseFlags(flags, FLAGS, true), command, env);
}

describe("submit's command line", () => {
  it("takes everything after the first -- as the command, flags included", () => {
    expect(splitCommand(["--gpus", "2", "--", "python", "x.py", "--gpus", "--", "y"])).toEqual({
      flags: ["--gpus", "2"],
      command: ["python", "x.py", "--gpus", "--", "y"],
    });
    expect(splitCommand(["--wait"])).toEqual({ flags: ["--wait"], command: [] });
  });

  it("builds the submission with defaults: one GPU, named after the command", () => {
    expect(submission(["--", "/usr/bin/python3", "train.py"])).toEqual({
      name: "python3",
      command: ["/usr/bin/python3", "train.py"],
      gpus: 1,
    });
  });

  it("maps every flag onto the API's fields", () => {
    expect(
      submission(
        [
          "--name=train",
          "--gpus",
          "4",
          "--gpu-type",
          "H100",
          "--priority",
          "high",
          "--max-runtime",
          "1h30m",
          "--max-retries",
          "2",
          "--label",
          "team=vision",
          "--label",
          "expr=a=b",
          "--env",
          "LR=0.1",
          "--env",
          "HOME_DIR",
          "--user",
          "bob",
          "--array",
          "8",
          "--after",
          "job_1",
          "--after",
          "job_2:finished",
          "--",
          "python",
          "train.py",
        ],
        { HOME_DIR: "/home/bob" },
      ),
    ).toEqual({
      name: "train",
      command: ["python", "train.py"],
      gpus: 4,
      gpuType: "H100",
      priority: "high",
      maxRuntimeSeconds: 5400,
      maxRetries: 2,
      labels: { team: "vision", expr: "a=b" },
      env: { LR: "0.1", HOME_DIR: "/home/bob" },
      user: "bob",
      array: { size: 8 },
      dependsOn: [
        { job: "job_1", condition: "succeeded" },
        { job: "job_2", condition: "finished" },
      ],
    });
  });

  it.each([
    [["--gpus", "0", "--", "x"], /--gpus expects a whole number >= 1/],
    [["--gpus", "1.5", "--", "x"], /--gpus expects a whole number/],
    [["--priority", "urgent", "--", "x"], /--priority must be high, normal or low/],
    [["--max-runtime", "soon", "--", "x"], /--max-runtime expects a duration/],
    [["--label", "novalue", "--", "x"], /--label expects KEY=VALUE/],
    [["--env", "UNSET_VAR", "--", "x"], /UNSET_VAR is not set/],
    [["--after", "job_1:maybe", "--", "x"], /--after condition must be/],
    [["--gpus", "2"], /missing the job's command/],
  ])("%j is a usage error", (argv, message) => {
    expect(() => submission(argv)).toThrow(UsageError);
    expect(() => submission(argv)).toThrow(message);
  });

  it("unknown flags and missing values are usage errors with exit code 2", () => {
    for (const argv of [["--frobnicate"], ["--gpus"]]) {
      try {
        parseFlags(argv, FLAGS, true);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        expect((err as UsageError).exitCode).toBe(2);
      }
    }
  });

  it("parses --after and --env forms", () => {
    expect(parseAfter("job_01abc")).toEqual({ job: "job_01abc", condition: "succeeded" });
    expect(() => parseAfter(":finished")).toThrow(UsageError);
    expect(parseEnvPairs(["A=", "B=x=y"], {})).toEqual({ A: "", B: "x=y" });
    expect(() => parseEnvPairs(["=x"], {})).toThrow(UsageError);
  });
});

describe("admin quota --gpus", () => {
  it("parses TYPE=NOMINAL with borrow and lend, and formats it back", () => {
    expect(parseGpuQuota("H100=8")).toEqual(["H100", { nominal: 8 }]);
    expect(parseGpuQuota("H100=8,borrow=4,lend=2")).toEqual([
      "H100",
      { nominal: 8, borrowingLimit: 4, lendingLimit: 2 },
    ]);
    expect(parseGpuQuota("*=2")).toEqual(["*", { nominal: 2 }]);
    expect(
      formatQuota({
        gpus: { H100: { nominal: 8, borrowingLimit: 4, lendingLimit: null }, "*": { nominal: 2 } },
        cohort: "research",
        maxConcurrentJobs: 5,
      }),
    ).toBe("H100=8,borrow=4 *=2 cohort=research max-jobs=5");
  });

  it.each(["H100", "=8", "H100=x", "H100=8,borrow", "H100=8,steal=1", "H100=-1"])("rejects %j", (raw) => {
    expect(() => parseGpuQuota(raw)).toThrow(UsageError);
  });
});

describe("login --url", () => {
  it("keeps any path prefix but no trailing slash", () => {
    expect(normalizeUrl("https://gantry.example.com/")).toBe("https://gantry.example.com");
    expect(normalizeUrl("http://127.0.0.1:8787/gantry/")).toBe("http://127.0.0.1:8787/gantry");
  });
  it.each(["gantry.example.com", "ftp://x", "https://u:p@x", "https://x/?a=1"])("rejects %j", (raw) => {
    expect(() => normalizeUrl(raw)).toThrow(UsageError);
  });
});
