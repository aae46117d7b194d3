// GPU discovery: nvidia-smi on real hosts, or a fake spec ("fake:2xH100,1xA100") so the whole system can be
// exercised on machines without GPUs (CI, laptops, benchmarks).
import { execFile } from "node:child_process";
import { CliError, UsageError } from "../lib/errors.ts";
import type { GpuInfo } from "./protocol.ts";

export const NVIDIA_SMI_ARGS = ["--query-gpu=index,name,memory.total,uuid", "--format=csv,noheader,nounits"];
const FAKE_MEMORY_MIB = 81920;
const TYPE_PATTERN = /^[A-Za-z0-9._-]+$/;

/** Parses `nvidia-smi --query-gpu=index,name,memory.total,uuid --format=csv,noheader[,nounits]`. */
export function parseNvidiaSmiCsv(output: string): Omit<GpuInfo, "type">[] {
  const gpus: Omit<GpuInfo, "type">[] = [];
  for (const line of output.split(/\r?\n/)) {
    if (line.trim() === "") continue;
    const fields = line.split(",").map((f) => f.trim());
    if (fields.length < 4) throw new Error(`unexpected nvidia-smi line: "${line}"`);
    // index first, memory and uuid last: a model name containing a comma stays whole.
    const index = Number(fields[0]);
    const uuid = fields[fields.length - 1]!;
    const memoryField = fields[fields.length - 2]!;
    const model = fields.slice(1, -2).join(", ");
    if (!Number.isInteger(index) || index < 0)
      throw new Error(`unexpected GPU index in nvidia-smi line: "${line}"`);
    gpus.push({ index, model, memoryMiB: parseMemoryMiB(memoryField), uuid });
  }
  return gpus;
}

/** "81559", "81559 MiB" or "80 GiB" → MiB; "[N/A]" → 0 (some virtual GPUs do not report memory). */
export function parseMemoryMiB(field: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(MiB|GiB|MB|GB)?$/i.exec(field.trim());
  if (!m) return 0;
  const n = Number(m[1]);
  const unit = (m[2] ?? "MiB").toLowerCase();
  return Math.round(unit === "gib" || unit === "gb" ? n * 1024 : n);
}

// Words that say who made the card or how it is packaged, not which GPU it is.
const VENDOR = new Set(["NVIDIA", "TESLA", "GEFORCE", "QUADRO"]);
const PACKAGING =
  /^(\d+(\.\d+)?[GT]B|HBM\d*E?|PCIE|SXM\d*|NVL\d*|NVLINK|GENERATION|EDITION|LAPTOP|GPU|MAX-Q)$/;

/**
 * A short, stable GPU type from the marketing name, as jobs ask for it (`gpuType: "H100"`):
 * "NVIDIA H100 80GB HBM3" → H100, "Tesla V100-SXM2-16GB" → V100, "NVIDIA GeForce RTX 4090" → RTX4090,
 * "NVIDIA RTX A6000" → A6000. Falls back to the whole name (without spaces) when nothing fits.
 */
export function deriveGpuType(model: string): string {
  const tokens = model
    .toUpperCase()
    .split(/[\s_-]+/)
    .filter((t) => t !== "" && !VENDOR.has(t) && !PACKAGING.test(t));
  if (tokens.length === 0) return model.replace(/\s+/g, "") || "unknown";
  const [first, second] = tokens;
  if (first === "RTX" || first === "GTX") {
    // "RTX A6000" is a workstation card named A6000; "RTX 4090" / "RTX 6000 Ada" keep their prefix.
    if (second && /^[A-Z]\d/.test(second)) return second;
    return tokens.join("");
  }
  // Data-centre names: the first token with a digit is the chip (H100, A100, L40S, GH200, T4).
  return tokens.find((t) => /\d/.test(t)) ?? tokens.join("");
}

/** "fake:4xH100" or "fake:2xH100,1xA100" → GPUs with consecutive indices. */
export function parseFakeSpec(spec: string, hostname: string): GpuInfo[] {
  if (!spec.startsWith("fake:")) throw new UsageError(`not a fake GPU spec: "${spec}"`);
  const gpus: GpuInfo[] = [];
  for (const group of spec.slice("fake:".length).split(",")) {
    const m = /^(\d+)x([A-Za-z0-9._-]+)$/.exec(group.trim());
    if (!m) {
      throw new UsageError(`--gpus ${spec}: expected groups like "4xH100" (count x type), got "${group}"`);
    }
    const count = Number(m[1]);
    const type = m[2]!;
    if (count < 1 || count > 1024) throw new UsageError(`--gpus ${spec}: GPU count must be 1..1024`);
    for (let i = 0; i < count; i++) {
      const index = gpus.length;
      gpus.push({
        index,
        model: `FAKE ${type}`,
        type,
        memoryMiB: FAKE_MEMORY_MIB,
        uuid: `GPU-fake-${hostname}-${index}`,
      });
    }
  }
  return gpus;
}

export function isValidGpuType(type: string): boolean {
  return TYPE_PATTERN.test(type);
}

export interface DiscoverOptions {
  /** "auto" or a fake spec. */
  gpus: string;
  gpuType?: string | undefined;
  hostname: string;
  /** The nvidia-smi binary; tests point it at a script. */
  nvidiaSmi?: string;
}

/** Resolves the host's GPUs, with `type` filled in (from --gpu-type when given). */
export async function discoverGpus(opts: DiscoverOptions): Promise<GpuInfo[]> {
  let gpus: GpuInfo[];
  if (opts.gpus === "auto") {
    const raw = parseNvidiaSmiCsv(await runNvidiaSmi(opts.nvidiaSmi ?? "nvidia-smi"));
    gpus = raw.map((g) => ({ ...g, type: deriveGpuType(g.model) }));
  } else {
    gpus = parseFakeSpec(opts.gpus, opts.hostname);
  }
  if (gpus.length === 0) {
    throw new CliError("no GPUs found by nvidia-smi; for testing without GPUs use --gpus fake:4xH100");
  }
  return opts.gpuType ? gpus.map((g) => ({ ...g, type: opts.gpuType! })) : gpus;
}

function runNvidiaSmi(bin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, NVIDIA_SMI_ARGS, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        return reject(
          new CliError(
            "nvidia-smi not found: this host has no NVIDIA driver installed (or it is not on PATH). " +
              "To try the agent without GPUs use --gpus fake:NxTYPE, e.g. --gpus fake:4xH100",
          ),
        );
      }
      const detail = (stderr || stdout || err.message).trim().split("\n")[0];
      reject(
        new CliError(
          `nvidia-smi failed: ${detail}. Check the NVIDIA driver, or use --gpus fake:4xH100 for testing`,
        ),
      );
    });
  });
}
