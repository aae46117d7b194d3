// Errors that carry the process exit code they should end the command with, so every command can throw
// them from deep inside and `cli/main.ts` turns them into one clear line on stderr.

/** An error the user can act on; `exitCode` is what the command exits with. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/** Bad or missing command-line input. Exit code 2, like most Unix tools. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = "UsageError";
  }
}

/** Human-readable text for any thrown value, including the `cause` chain fetch() hides its reason in. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return `${err.message}: ${code ? `${code} ` : ""}${cause.message}`.trim();
  }
  return err.message;
}
