/**
 * One error type for the whole tool: a stable code (scripts and tests match on it), a message that names
 * the file/key/value at fault, and a hint that says what to do. The CLI renders it; nothing else prints.
 */
export class CdError extends Error {
  readonly code: string;
  readonly hint?: string;
  /** Process exit code the CLI uses (1 for every error; reserved for future distinctions). */
  readonly exitCode: number;

  constructor(
    code: string,
    message: string,
    opts: { hint?: string; cause?: unknown; exitCode?: number } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = "CdError";
    this.code = code;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? 1;
  }

  toJSON(): { code: string; message: string; hint?: string } {
    return { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}) };
  }
}

export function isCdError(e: unknown): e is CdError {
  return e instanceof CdError;
}

/** The message of anything thrown, for wrapping foreign errors into CdError without losing their text. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
