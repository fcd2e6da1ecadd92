/**
 * An error the simulator answers with, as pve-http-server sends it: the status, the message
 * (its first line becomes the HTTP reason phrase) and, for parameter errors, the `errors` map.
 */
export class PveHttpError extends Error {
  readonly status: number;
  readonly errors: Readonly<Record<string, string>> | undefined;

  constructor(status: number, message: string, errors?: Record<string, string>) {
    super(message);
    this.name = "PveHttpError";
    this.status = status;
    this.errors = errors;
  }
}

/** 400 `Parameter verification failed.` with the per-parameter reasons. */
export function parameterError(errors: Record<string, string>): PveHttpError {
  return new PveHttpError(400, "Parameter verification failed.", errors);
}

/** 500: what a handler `die`s with, e.g. `CT 100 already running`. */
export function handlerError(message: string): PveHttpError {
  return new PveHttpError(500, message);
}
