// Where command output goes. Results go to stdout (a table for people, one JSON document with --json);
// progress, warnings and errors go to stderr, so `gantry jobs --json | jq` only ever sees JSON.

export interface Streams {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

export class Output {
  constructor(
    readonly json: boolean,
    private readonly streams: Streams = process,
  ) {}

  /** Text for people, as is. */
  print(text: string): void {
    this.streams.stdout.write(text);
  }

  /** One line for people. */
  line(text = ""): void {
    this.streams.stdout.write(`${text}\n`);
  }

  /** The --json result: one pretty-printed document. */
  doc(value: unknown): void {
    this.streams.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** One compact JSON value per line, for streams (--watch --json, --follow --json). */
  jsonLine(value: unknown): void {
    this.streams.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** Progress and warnings: stderr, in both modes. */
  info(text: string): void {
    this.streams.stderr.write(`${text}\n`);
  }
}
