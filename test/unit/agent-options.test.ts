// `gantry agent` argument parsing: flags, environment fallbacks and the errors users see.
import { describe, expect, it } from "vitest";
import { parseAgentOptions } from "../../cli/agent/options.ts";
import { UsageError } from "../../cli/lib/errors.ts";

const host = () => "box-1";
const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseAgentOptions(argv, env, host);

describe("parseAgentOptions", () => {
  it("parses every flag", () => {
    expect(
      parse([
        "--url",
        "https://gantry.example.com/",
        "--join-token",
        "jt",
        "--gpus",
        "fake:2xH100,1xA100",
        "--gpu-type",
        "H100",
        "--hostname",
        "gpu-7",
        "--label",
        "zone=eu",
        "--label",
        "rack=a=b",
        "--drain-timeout",
        "30",
        "--log-interval",
        "2.5",
        "--log-level",
        "debug",
      ]),
    ).toEqual({
      url: "https://gantry.example.com",
      joinToken: "jt",
      gpus: "fake:2xH100,1xA100",
      gpuType: "H100",
      hostname: "gpu-7",
      labels: { zone: "eu", rack: "a=b" },
      drainTimeoutSeconds: 30,
      logIntervalSeconds: 2.5,
      logLevel: "debug",
    });
  });

  it("defaults and environment variables", () => {
    expect(parse([], { GANTRY_URL: "http://127.0.0.1:8787", GANTRY_JOIN_TOKEN: "from-env" })).toEqual({
      url: "http://127.0.0.1:8787",
      joinToken: "from-env",
      gpus: "auto",
      gpuType: undefined,
      hostname: "box-1",
      labels: {},
      drainTimeoutSeconds: 600,
      logIntervalSeconds: 15,
      logLevel: "info",
    });
  });

  it("flags win over the environment and keep a path prefix", () => {
    const o = parse(["--url", "http://a/gantry/", "--join-token", "flag"], {
      GANTRY_URL: "http://b",
      GANTRY_JOIN_TOKEN: "env",
    });
    expect([o?.url, o?.joinToken]).toEqual(["http://a/gantry", "flag"]);
  });

  it("returns null for --help", () => {
    expect(parse(["--help"])).toBeNull();
    expect(parse(["-h"])).toBeNull();
  });

  it.each([
    [[], /missing --url/],
    [["--url", "not a url", "--join-token", "t"], /not a valid URL/],
    [["--url", "ftp://x", "--join-token", "t"], /http:\/\/ or https:\/\//],
    [["--url", "http://u:p@x", "--join-token", "t"], /credentials/],
    [["--url", "http://x"], /missing --join-token/],
    [["--url", "http://x", "--join-token", "t", "--gpus", "8xH100"], /"auto" or a fake spec/],
    [["--url", "http://x", "--join-token", "t", "--gpus", "fake:8"], /4xH100/],
    [["--url", "http://x", "--join-token", "t", "--gpu-type", "H 100"], /--gpu-type/],
    [["--url", "http://x", "--join-token", "t", "--label", "novalue"], /key=value/],
    [["--url", "http://x", "--join-token", "t", "--drain-timeout", "-1"], /--drain-timeout/],
    [["--url", "http://x", "--join-token", "t", "--drain-timeout", "soon"], /--drain-timeout/],
    [["--url", "http://x", "--join-token", "t", "--log-level", "loud"], /--log-level/],
    [["--url", "http://x", "--join-token", "t", "--log-interval", "-5"], /--log-interval/],
    [["--url", "http://x", "--join-token", "t", "--nope"], /Unknown option '--nope'/],
    [["--url", "http://x", "--join-token", "t", "extra"], /positional/i],
  ])("rejects %j", (argv, message) => {
    let err: unknown;
    try {
      parse(argv as string[]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(message);
  });
});
