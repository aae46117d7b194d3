// A Postgres wire-protocol server in front of embedded PGlite. PGlite is one session; many clients share it.
// @electric-sql/pglite-socket's multiplexer interleaves clients message by message, so one client's Bind
// can land on another's unnamed Parse — under concurrency that corrupts queries ("Failed query"). Here a
// client's messages run as whole batches (up to a Sync or a simple Query), and a client inside a
// transaction keeps the session until the transaction ends, exactly like separate sessions would.
import net from "node:net";
import type { PGlite } from "@electric-sql/pglite";

const SSL_REQUEST = 80877103;
const CANCEL_REQUEST = 80877102;
const GSSENC_REQUEST = 80877104;
/** Message types after which the client waits for the server: the end of a batch. */
const FLUSH_POINTS = new Set(["S", "Q", "X", "H", "p"]);

interface Batch {
  conn: Conn;
  bytes: Uint8Array;
}

class Conn {
  buf: Buffer = Buffer.alloc(0);
  started = false;
  closed = false;
  pending: Buffer[] = [];
  constructor(
    readonly id: number,
    readonly socket: net.Socket,
  ) {}
}

export class PgliteServer {
  private server: net.Server | null = null;
  private queue: Batch[] = [];
  private running = false;
  /** The client whose transaction is open; only its batches may run until it ends. */
  private owner: Conn | null = null;
  private conns = new Set<Conn>();
  private nextId = 1;

  constructor(private db: PGlite) {}

  async start(port = 0, host = "127.0.0.1"): Promise<number> {
    await this.db.waitReady;
    this.server = net.createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(port, host, () => resolve());
    });
    const a = this.server.address();
    return typeof a === "object" && a ? a.port : port;
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    // Let a running batch finish before the caller closes the database.
    while (this.running) await new Promise((r) => setTimeout(r, 5));
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    const c = new Conn(this.nextId++, socket);
    this.conns.add(c);
    socket.on("data", (d) => this.onData(c, d));
    const gone = () => this.onClose(c);
    socket.on("close", gone);
    socket.on("error", gone);
  }

  private onData(c: Conn, data: Buffer): void {
    c.buf = c.buf.length ? Buffer.concat([c.buf, data]) : data;
    for (;;) {
      if (!c.started) {
        // Untyped startup packets: int32 length, int32 code.
        if (c.buf.length < 8) return;
        const len = c.buf.readInt32BE(0);
        if (c.buf.length < len) return;
        const code = c.buf.readInt32BE(4);
        const msg = c.buf.subarray(0, len);
        c.buf = c.buf.subarray(len);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          c.socket.write("N"); // no TLS on loopback
          continue;
        }
        if (code === CANCEL_REQUEST) {
          c.socket.end();
          return;
        }
        c.started = true;
        this.enqueue(c, [Buffer.from(msg)]);
        continue;
      }
      if (c.buf.length < 5) return;
      const len = 1 + c.buf.readInt32BE(1);
      if (c.buf.length < len) return;
      const type = String.fromCharCode(c.buf[0]!);
      c.pending.push(Buffer.from(c.buf.subarray(0, len)));
      c.buf = c.buf.subarray(len);
      if (FLUSH_POINTS.has(type)) {
        const batch = c.pending;
        c.pending = [];
        if (type === "X") {
          // Terminate: nothing to run except ending an open transaction.
          batch.pop();
          if (batch.length) this.enqueue(c, batch);
          c.socket.end();
          return;
        }
        this.enqueue(c, batch);
      }
    }
  }

  private enqueue(c: Conn, parts: Buffer[]): void {
    this.queue.push({ conn: c, bytes: new Uint8Array(Buffer.concat(parts)) });
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        const i = this.owner ? this.queue.findIndex((b) => b.conn === this.owner) : 0;
        if (i < 0 || this.queue.length === 0) break;
        const [b] = this.queue.splice(i, 1);
        if (!b || b.conn.closed) continue;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(b.bytes, {
              onRawData: (out: Uint8Array) => {
                if (!b.conn.closed && out.length) b.conn.socket.write(out);
              },
            }),
          );
        } catch (e) {
          // PGlite reports protocol-level errors to the client itself; anything thrown here is fatal
          // for this client only.
          b.conn.socket.destroy(e as Error);
        }
        this.owner = this.db.isInTransaction() ? b.conn : null;
      }
    } finally {
      this.running = false;
    }
  }

  private onClose(c: Conn): void {
    if (c.closed) return;
    c.closed = true;
    this.conns.delete(c);
    this.queue = this.queue.filter((b) => b.conn !== c);
    if (this.owner === c) {
      // A client that vanished mid-transaction: roll it back so the session is clean for the others.
      this.owner = null;
      void this.db
        .exec("ROLLBACK")
        .catch(() => {})
        .then(() => this.pump());
    }
  }
}
