// What the figures were measured on: CPU, cores, memory, Node, wrangler and workerd versions, and how busy
// the machine already was (load average) when the run started.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  wrangler: string;
  workerd: string;
  loadAverage: number[];
}

function pkgVersion(name: string): string {
  try {
    const p = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", name, "package.json"), "utf8"));
    return String(p.version);
  } catch {
    return "unknown";
  }
}

function workerdVersion(): string {
  try {
    // The binary prints "workerd 2026-04-26": the runtime's own compatibility date is its version.
    return execFileSync(path.join(ROOT, "node_modules", ".bin", "workerd"), ["--version"], {
      encoding: "utf8",
    })
      .trim()
      .replace(/^workerd\s+/, "");
  } catch {
    return pkgVersion("workerd");
  }
}

function osName(): string {
  try {
    const r = fs.readFileSync("/etc/os-release", "utf8");
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(r)?.[1] ?? `${os.type()} ${os.release()}`;
  } catch {
    return `${os.type()} ${os.release()}`;
  }
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: osName(),
    node: process.version,
    wrangler: pkgVersion("wrangler"),
    workerd: `${workerdVersion()} (npm workerd ${pkgVersion("workerd")})`,
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
