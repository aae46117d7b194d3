// A Server-Sent Events parser (the WHATWG event-stream format): feed it text as it arrives, get whole
// events back. Pure, so chunk boundaries anywhere (mid-line, mid-CRLF) are unit-tested.

export interface SseEvent {
  /** The `id:` field (the last one seen in the stream, as the spec says), or undefined. */
  id: string | undefined;
  event: string;
  data: string;
}

export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private lastId: string | undefined;
  private sawCr = false;
  /** The server's `retry:` hint in milliseconds, when it sent one. */
  retryMs: number | undefined;

  /** Parses a chunk; returns the events it completed (possibly none). */
  push(chunk: string): SseEvent[] {
    let text = chunk;
    // A CRLF split across chunks: the CR already ended the line, so drop the LF.
    if (this.sawCr && text.startsWith("\n")) text = text.slice(1);
    this.sawCr = text.endsWith("\r");
    this.buffer += text;
    const out: SseEvent[] = [];
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop() ?? "";
    for (const line of lines) {
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    return out;
  }

  private line(line: string): SseEvent | null {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return null; // comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.data.push(value);
        break;
      case "event":
        this.event = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
    }
    return null;
  }

  private dispatch(): SseEvent | null {
    if (this.data.length === 0) {
      this.event = "";
      return null;
    }
    const ev = { id: this.lastId, event: this.event || "message", data: this.data.join("\n") };
    this.data = [];
    this.event = "";
    return ev;
  }
}
