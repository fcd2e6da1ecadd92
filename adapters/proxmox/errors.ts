/**
 * Typed Proxmox errors, in the runtime's one error family. Each keeps Proxmox's original
 * text (`pveMessage`) and the request it answered (method and path, never parameters: those
 * may hold secrets). `classifyPveMessage` turns PVE's plain-text 500s into the right class.
 */
import {
  AbortedError,
  AlreadyExistsError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  RuntimeError,
  type RuntimeErrorOptions,
  UnavailableError,
} from "../../lib/errors.ts";

/** Where an error came from: the request and Proxmox's own words. */
export interface PveErrorContext {
  method?: string;
  path?: string;
  status?: number;
  /** Proxmox's message as sent (first line = HTTP reason phrase), trailing newline removed. */
  pveMessage?: string;
  /** The UPID of a failed task. */
  upid?: string;
}

function options(context: PveErrorContext, cause?: unknown): RuntimeErrorOptions {
  const details: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(context)) if (value !== undefined) details[key] = value;
  return cause === undefined ? { details } : { details, cause };
}

export class PveNotFoundError extends NotFoundError {
  constructor(message: string, context: PveErrorContext = {}) {
    super(message, options(context));
  }
}

export class PveAlreadyExistsError extends AlreadyExistsError {
  constructor(message: string, context: PveErrorContext = {}) {
    super(message, options(context));
  }
}

/** `CT N already running` (start, resume). */
export class PveAlreadyRunningError extends FailedPreconditionError {
  constructor(message: string, context: PveErrorContext = {}) {
    super(message, options(context));
  }
}

/** `CT N not running` (stop, shutdown). */
export class PveNotRunningError extends FailedPreconditionError {
  constructor(message: string, context: PveErrorContext = {}) {
    super(message, options(context));
  }
}

/** `unable to destroy CT N - container is running` (destroy without force). */
export class PveContainerRunningError extends FailedPreconditionError {
  constructor(message: string, context: PveErrorContext = {}) {
    super(message, options(context));
  }
}

/** `CT is locked (create)`, or the config file lock timed out (`lock` is then `flock`). */
export class PveLockedError extends FailedPreconditionError {
  /** The config lock (`create`, `backup`, `destroyed`, …) or `flock`. */
  readonly lock: string;

  constructor(message: string, lock: string, context: PveErrorContext = {}) {
    super(message, options(context));
    this.lock = lock;
    this.details.lock = lock;
  }
}

/** A `digest` that no longer matches: someone else changed the config. */
export class PveConfigChangedError extends AbortedError {
  constructor(message: string, context: PveErrorContext = {}) {
    super(message, options(context));
  }
}

/** `unable to get any free VMID in range [lo, hi]`: the cluster's next-id range is full. */
export class PveNoFreeVmidError extends ResourceExhaustedError {
  constructor(message: string, context: PveErrorContext = {}) {
    super(message, options(context));
  }
}

/** 400 `Parameter verification failed.` with the reason per parameter. */
export class PveParameterError extends InvalidArgumentError {
  readonly errors: Readonly<Record<string, string>>;

  constructor(message: string, errors: Record<string, string>, context: PveErrorContext = {}) {
    super(message, options(context));
    this.errors = errors;
    this.details.errors = errors;
  }
}

/** 401: bad or expired credentials, a missing ticket or CSRF token. */
export class PveAuthenticationError extends RuntimeError {
  constructor(message: string, context: PveErrorContext = {}) {
    super("Unauthenticated", message, options(context));
  }
}

/** 403: `Permission check failed (…)`. */
export class PvePermissionError extends RuntimeError {
  constructor(message: string, context: PveErrorContext = {}) {
    super("PermissionDenied", message, options(context));
  }
}

/** An operation only a `root@pam` ticket may do (API tokens never can). */
export class PveRootRequiredError extends PvePermissionError {}

/** The connection failed or dropped, or a proxy answered 5xx for the node. */
export class PveTransportError extends UnavailableError {
  constructor(message: string, context: PveErrorContext = {}, cause?: unknown) {
    super(message, options(context, cause));
  }
}

/** No connection could be made (refused, unreachable): the request was never sent. */
export class PveUnreachableError extends PveTransportError {}

/** A request or a task wait took longer than allowed. */
export class PveTimeoutError extends DeadlineExceededError {
  constructor(message: string, context: PveErrorContext = {}) {
    super(message, options(context));
  }
}

/** A task ended with an error that has no more specific class. */
export class PveTaskFailedError extends InternalError {
  readonly upid: string;
  readonly exitstatus: string;
  /** The last lines of the task log. */
  readonly logTail: readonly string[];

  constructor(
    message: string,
    task: { upid: string; exitstatus: string; logTail: string[] },
    context: PveErrorContext = {},
  ) {
    super(message, options({ ...context, upid: task.upid }));
    this.upid = task.upid;
    this.exitstatus = task.exitstatus;
    this.logTail = task.logTail;
    this.details.exitstatus = task.exitstatus;
    this.details.logTail = task.logTail;
  }
}

/** 501, or any other answer the client cannot use. */
export class PveServerError extends InternalError {
  constructor(message: string, context: PveErrorContext = {}) {
    super(message, options(context));
  }
}

/**
 * The typed error for one of PVE's texts, or undefined when the text has no class of its
 * own. Used for 500 answers and for failed tasks alike.
 */
export function classifyPveMessage(
  message: string,
  text: string,
  context: PveErrorContext,
): RuntimeError | undefined {
  const first = text.split("\n")[0] ?? "";
  let m: RegExpExecArray | null;
  if (/^(?:CT|VM) \d+ already running$/.test(first)) {
    return new PveAlreadyRunningError(message, context);
  }
  if (/^(?:CT|VM) \d+ not running$|^container '\d+' not running!?$/.test(first)) {
    return new PveNotRunningError(message, context);
  }
  if (/container is running$/.test(first)) return new PveContainerRunningError(message, context);
  if ((m = /CT is locked \(([^)]+)\)/.exec(text)) !== null) {
    return new PveLockedError(message, m[1]!, context);
  }
  if (/^can't lock file '.*' - got timeout$/.test(first)) {
    return new PveLockedError(message, "flock", context);
  }
  if (/already exists on node|^(?:CT|VM) \d+ already exists/.test(first)) {
    return new PveAlreadyExistsError(message, context);
  }
  if (/^unable to get any free VMID/.test(first)) return new PveNoFreeVmidError(message, context);
  if (/^detected modified configuration/.test(first)) {
    return new PveConfigChangedError(message, context);
  }
  if (
    /^Configuration file '.*' does not exist$|^(?:volume|storage|snapshot) '.*' does not exist$|^no such task$/
      .test(first)
  ) {
    return new PveNotFoundError(message, context);
  }
  if (/only allowed for root@pam|^Only root can /.test(text)) {
    return new PveRootRequiredError(message, context);
  }
  return undefined;
}
