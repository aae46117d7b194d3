// WebSocket → TCP proxy so the Neon serverless driver (which speaks the Postgres wire protocol over a
// WebSocket) can reach a plain local Postgres or PGlite. Production talks to Neon directly and never uses this.
import net from "node:net";
import { WebSocketServer } from "ws";

export interface WsProxy {
  port: number;
  close(): Promise<void>;
}

// Postgres "Terminate" message: 'X' then int32 length 4. workerd never delivers the WebSocket close frame
// after pool.end(), so the proxy must close both sides itself or connections leak (research/spike.md §7.6).
// The driver writes Terminate on its own, so an exact 5-byte match never mistakes query bytes for it.
function isTerminate(b: Buffer): boolean {
  return b.length === 5 && b[0] === 0x58 && b.readInt32BE(1) === 4;
}

export async function startWsProxy(opts: { allowed: string[]; port?: number }): Promise<WsProxy> {
  const allowed = new Set(opts.allowed);
  const sockets = new Set<net.Socket>();
  const wss = new WebSocketServer({ host: "127.0.0.1", port: opts.port ?? 0, perMessageDeflate: false });
  wss.on("connection", (ws, req) => {
    const address = new URL(req.url ?? "/", "http://proxy").searchParams.get("address") ?? "";
    // Never an open relay: only the database this launcher started (or was given) is reachable.
    if (!allowed.has(address)) {
      ws.close(1008, "address not allowed");
      return;
    }
    const i = address.lastIndexOf(":");
    const sock = net.connect({
      host: address.slice(0, i),
      port: Number(address.slice(i + 1)),
      noDelay: true,
    });
    sockets.add(sock);
    const pending: Buffer[] = [];
    let up = false;
    sock.on("connect", () => {
      up = true;
      for (const b of pending) sock.write(b);
      pending.length = 0;
    });
    ws.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
      const b = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data as ArrayBuffer);
      if (up) sock.write(b);
      else pending.push(b);
      if (isTerminate(b)) {
        sock.end();
        ws.close(1000);
      }
    });
    sock.on("data", (d) => {
      if (ws.readyState === ws.OPEN) ws.send(d, { binary: true });
    });
    const done = () => {
      sockets.delete(sock);
      sock.destroy();
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
    };
    sock.on("close", done);
    sock.on("error", done);
    ws.on("close", done);
    ws.on("error", done);
  });
  await new Promise<void>((resolve, reject) => {
    wss.once("listening", () => resolve());
    wss.once("error", reject);
  });
  const addr = wss.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}
