// The last 64 KiB of a job's combined stdout+stderr, kept in memory as the output streams in. A job can
// print gigabytes; only the tail is uploaded with the final status, so memory stays bounded per job.

export const LOG_TAIL_BYTES = 64 * 1024;

export class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  private total = 0;

  constructor(readonly capacity: number = LOG_TAIL_BYTES) {}

  /** Bytes seen in total (not just kept). */
  get bytesSeen(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (chunk.length >= this.capacity) {
      // Copy: a subarray would pin the whole (possibly huge) chunk in memory.
      this.chunks = [Buffer.from(chunk.subarray(chunk.length - this.capacity))];
      this.size = this.capacity;
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    // Drop whole chunks from the front while the rest still covers the capacity.
    while (this.chunks.length > 1 && this.size - this.chunks[0]!.length >= this.capacity) {
      this.size -= this.chunks.shift()!.length;
    }
  }

  /** The kept tail as text, at most `capacity` bytes of UTF-8. */
  text(): string {
    return utf8Tail(Buffer.concat(this.chunks, this.size), this.capacity);
  }
}

/**
 * The last `maxBytes` of `buf` as a string whose UTF-8 encoding is at most `maxBytes` long, never starting
 * in the middle of a character. Invalid bytes become U+FFFD (3 bytes each), which can push the text over
 * the limit, so the decoded text is cut once more; the second pass works on valid UTF-8 and is exact.
 */
export function utf8Tail(buf: Buffer, maxBytes: number): string {
  const text = decodeTail(buf, maxBytes);
  if (Buffer.byteLength(text, "utf8") <= maxBytes) return text;
  return decodeTail(Buffer.from(text, "utf8"), maxBytes);
}

function decodeTail(buf: Buffer, maxBytes: number): string {
  const cut = Math.max(0, buf.length - maxBytes);
  let start = cut;
  // Skip UTF-8 continuation bytes (10xxxxxx) so the cut falls on a character boundary. A character has
  // at most 3 of them; more in a row is invalid data, which the decoder replaces anyway.
  while (start < buf.length && start < cut + 3 && (buf[start]! & 0xc0) === 0x80) start++;
  return buf.toString("utf8", start);
}
