// Load generators run in child processes (forked through tsx) so that neither they nor the embedded
// database — which runs inside the orchestrator's own process — can stall each other's event loops and
// inflate what they measure. Parent and child talk over the IPC channel: {id, cmd, args} → {id, result}.
import { type ChildProcess, fork } from "node:child_process";
import path from "node:path";
import { ROOT } from "./machine.ts";

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export class ChildProc {
  private seq = 0;
  private waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private exited: Promise<number | null>;

  private constructor(private proc: ChildProcess) {
    proc.on("message", (m: Reply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(m.error));
    });
    this.exited = new Promise((r) => proc.on("exit", (code) => r(code)));
    void this.exited.then((code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`child exited (${code})`));
      this.waiting.clear();
    });
  }

  /** `file` is relative to bench/child/. */
  static start(file: string): ChildProc {
    const proc = fork(path.join(ROOT, "bench", "child", file), [], {
      cwd: ROOT,
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "advanced",
    });
    return new ChildProc(proc);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  call<T>(cmd: string, args: unknown = {}): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, cmd, args });
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) this.proc.kill("SIGTERM");
    await this.exited;
  }
}

/** Child side: answer the parent's calls with these handlers; exit when the parent goes away. */
export function serve(handlers: Record<string, (args: never) => Promise<unknown>>): void {
  process.on("message", async (m: { id: number; cmd: string; args: unknown }) => {
    const h = handlers[m.cmd];
    try {
      if (!h) throw new Error(`unknown command ${m.cmd}`);
      const result = await h(m.args as never);
      process.send?.({ id: m.id, ok: true, result });
    } catch (e) {
      process.send?.({ id: m.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    }
  });
  process.on("disconnect", () => process.exit(0));
}
