// GPU discovery: nvidia-smi output parsing, GPU type derivation from model names, the fake spec, and the
// real nvidia-smi call path (with a stand-in script, since CI has no GPUs).
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  deriveGpuType,
  discoverGpus,
  parseFakeSpec,
  parseMemoryMiB,
  parseNvidiaSmiCsv,
} from "../../cli/agent/gpus.ts";

describe("parseNvidiaSmiCsv", () => {
  it("parses the nounits format", () => {
    const out =
      "0, NVIDIA H100 80GB HBM3, 81559, GPU-8f6c1c3e-aaaa\n1, NVIDIA H100 80GB HBM3, 81559, GPU-8f6c1c3e-bbbb\n";
    expect(parseNvidiaSmiCsv(out)).toEqual([
      { index: 0, model: "NVIDIA H100 80GB HBM3", memoryMiB: 81559, uuid: "GPU-8f6c1c3e-aaaa" },
      { index: 1, model: "NVIDIA H100 80GB HBM3", memoryMiB: 81559, uuid: "GPU-8f6c1c3e-bbbb" },
    ]);
  });

  it("parses output with units, CRLF line ends and blank lines", () => {
    const out =
      "0, Tesla V100-SXM2-16GB, 16384 MiB, GPU-1\r\n\r\n1, NVIDIA A100-SXM4-80GB, 81920 MiB, GPU-2\r\n";
    expect(parseNvidiaSmiCsv(out).map((g) => [g.index, g.model, g.memoryMiB])).toEqual([
      [0, "Tesla V100-SXM2-16GB", 16384],
      [1, "NVIDIA A100-SXM4-80GB", 81920],
    ]);
  });

  it("keeps a model name that contains a comma", () => {
    expect(parseNvidiaSmiCsv("3, Weird, Card, 1024, GPU-x")[0]).toEqual({
      index: 3,
      model: "Weird, Card",
      memoryMiB: 1024,
      uuid: "GPU-x",
    });
  });

  it("rejects lines it cannot understand", () => {
    expect(() => parseNvidiaSmiCsv("No devices were found")).toThrow(/unexpected nvidia-smi line/);
    expect(() => parseNvidiaSmiCsv("x, A100, 1, GPU-1")).toThrow(/GPU index/);
  });

  it("reads memory in MiB or GiB and treats [N/A] as 0", () => {
    expect(parseMemoryMiB("81559")).toBe(81559);
    expect(parseMemoryMiB("81559 MiB")).toBe(81559);
    expect(parseMemoryMiB("80 GiB")).toBe(81920);
    expect(parseMemoryMiB("[N/A]")).toBe(0);
  });
});

describe("deriveGpuType", () => {
  it.each([
    ["NVIDIA H100 80GB HBM3", "H100"],
    ["NVIDIA H100 PCIe", "H100"],
    ["NVIDIA H100 NVL", "H100"],
    ["NVIDIA A100-SXM4-80GB", "A100"],
    ["NVIDIA A100 80GB PCIe", "A100"],
    ["Tesla V100-SXM2-16GB", "V100"],
    ["Tesla T4", "T4"],
    ["NVIDIA L40S", "L40S"],
    ["NVIDIA L4", "L4"],
    ["NVIDIA GeForce RTX 4090", "RTX4090"],
    ["NVIDIA GeForce RTX 3090 Ti", "RTX3090TI"],
    ["NVIDIA RTX A6000", "A6000"],
    ["NVIDIA RTX 6000 Ada Generation", "RTX6000ADA"],
    ["Quadro RTX 8000", "RTX8000"],
    ["NVIDIA H200", "H200"],
    ["NVIDIA GH200 480GB", "GH200"],
    ["NVIDIA A10G", "A10G"],
    ["NVIDIA B200", "B200"],
  ])("%s → %s", (model, type) => {
    expect(deriveGpuType(model)).toBe(type);
  });

  it("falls back to the name without spaces", () => {
    expect(deriveGpuType("NVIDIA TITAN RTX")).toBe("TITANRTX");
  });
});

describe("parseFakeSpec", () => {
  it("makes N fake GPUs of a type", () => {
    const gpus = parseFakeSpec("fake:4xH100", "host-a");
    expect(gpus).toHaveLength(4);
    expect(gpus[0]).toEqual({
      index: 0,
      model: "FAKE H100",
      type: "H100",
      memoryMiB: 81920,
      uuid: "GPU-fake-host-a-0",
    });
    expect(gpus.map((g) => g.index)).toEqual([0, 1, 2, 3]);
  });

  it("continues indices across groups", () => {
    const gpus = parseFakeSpec("fake:2xH100,1xA100", "h");
    expect(gpus.map((g) => `${g.index}:${g.type}:${g.uuid}`)).toEqual([
      "0:H100:GPU-fake-h-0",
      "1:H100:GPU-fake-h-1",
      "2:A100:GPU-fake-h-2",
    ]);
  });

  it.each(["fake:", "fake:H100", "fake:0xH100", "fake:4x", "fake:4xH 100", "fake:2xH100,", "fake:-1xA100"])(
    "rejects %s",
    (spec) => {
      expect(() => parseFakeSpec(spec, "h")).toThrow(/--gpus|count/);
    },
  );
});

describe("discoverGpus", () => {
  const dir = mkdtempSync(join(tmpdir(), "gantry-gpus-"));
  const script = (name: string, body: string) => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  };

  it("runs nvidia-smi with the query arguments and derives types", async () => {
    const smi = script(
      "smi-ok",
      `[ "$1" = "--query-gpu=index,name,memory.total,uuid" ] || exit 9
printf '0, NVIDIA H100 80GB HBM3, 81559, GPU-a\\n1, NVIDIA L40S, 46068, GPU-b\\n'`,
    );
    const gpus = await discoverGpus({ gpus: "auto", hostname: "h", nvidiaSmi: smi });
    expect(gpus.map((g) => [g.index, g.type, g.uuid])).toEqual([
      [0, "H100", "GPU-a"],
      [1, "L40S", "GPU-b"],
    ]);
  });

  it("--gpu-type overrides the derived type, for real and fake GPUs", async () => {
    const smi = script("smi-one", "echo '0, NVIDIA H100 80GB HBM3, 81559, GPU-a'");
    expect(
      (await discoverGpus({ gpus: "auto", gpuType: "h100-sxm", hostname: "h", nvidiaSmi: smi }))[0]!.type,
    ).toBe("h100-sxm");
    expect((await discoverGpus({ gpus: "fake:1xA100", gpuType: "X", hostname: "h" }))[0]!.type).toBe("X");
  });

  it("suggests the fake spec when nvidia-smi is missing", async () => {
    await expect(
      discoverGpus({ gpus: "auto", hostname: "h", nvidiaSmi: join(dir, "no-such-smi") }),
    ).rejects.toThrow(/nvidia-smi not found.*--gpus fake:/);
  });

  it("reports nvidia-smi's own error", async () => {
    const smi = script(
      "smi-fail",
      "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2; exit 9",
    );
    await expect(discoverGpus({ gpus: "auto", hostname: "h", nvidiaSmi: smi })).rejects.toThrow(
      /nvidia-smi failed: NVIDIA-SMI has failed/,
    );
  });

  it("fails when nvidia-smi lists no GPU", async () => {
    const smi = script("smi-empty", "true");
    await expect(discoverGpus({ gpus: "auto", hostname: "h", nvidiaSmi: smi })).rejects.toThrow(
      /no GPUs found/,
    );
  });
});
