/**
 * Waiting for a PVE task: poll `tasks/{upid}/status` until `stopped`, first right away (a
 * fast task is often done by then), then with exponential backoff, held short for a task's
 * first 100 ms. `OK` and `WARNINGS: N` are success; any other exit status fails with the last
 * lines of the task log attached.
 */
import type { TaskLogLine, TaskStatus, WaitOptions } from "./api.ts";
import { classifyPveMessage, PveTaskFailedError, PveTimeoutError } from "./errors.ts";

export interface PollingOptions {
  /** Wait before the first status check (0: check at once). */
  initialDelayMs: number;
  /** First interval between checks, doubled up to `maxIntervalMs`. */
  minIntervalMs: number;
  maxIntervalMs: number;
  /**
   * For a task's first `briskForMs`, intervals grow no longer than `briskMaxIntervalMs`: most
   * tasks end within it, and doubling alone would see one that ends at 16 ms only at 31.
   */
  briskForMs?: number;
  briskMaxIntervalMs?: number;
  /** Lines of the log put into a failure. */
  logTailLines: number;
}

export const defaultPolling: PollingOptions = {
  initialDelayMs: 0,
  minIntervalMs: 1,
  maxIntervalMs: 1000,
  briskForMs: 100,
  briskMaxIntervalMs: 4,
  logTailLines: 10,
};

export function isTaskSuccess(exitstatus: string | undefined): boolean {
  return exitstatus === "OK" || /^WARNINGS: \d+$/.test(exitstatus ?? "");
}

export interface TaskReader {
  taskStatus(upid: string): Promise<TaskStatus>;
  taskLog(upid: string, range?: { start?: number; limit?: number }): Promise<TaskLogLine[]>;
}

export async function waitForTask(
  reader: TaskReader,
  upid: string,
  polling: PollingOptions,
  options: WaitOptions = {},
): Promise<TaskStatus> {
  const began = performance.now();
  const deadline = began + (options.timeoutMs ?? 600_000);
  let interval = polling.minIntervalMs;
  if (polling.initialDelayMs > 0) await sleep(polling.initialDelayMs, options.signal);
  for (;;) {
    options.signal?.throwIfAborted();
    const status = await reader.taskStatus(upid);
    if (status.status === "stopped") {
      if (isTaskSuccess(status.exitstatus)) return status;
      throw await taskFailure(reader, status, polling.logTailLines);
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new PveTimeoutError(
        `Proxmox task ${upid} still running after ${options.timeoutMs ?? 600_000} ms`,
        { upid },
      );
    }
    await sleep(Math.min(interval, left), options.signal);
    interval = nextPollInterval(interval, performance.now() - began, polling);
  }
}

/** The wait before the next status check, `elapsedMs` into the task. */
export function nextPollInterval(
  interval: number,
  elapsedMs: number,
  polling: PollingOptions,
): number {
  const brisk = elapsedMs < (polling.briskForMs ?? 0);
  const cap = brisk ? (polling.briskMaxIntervalMs ?? polling.maxIntervalMs) : polling.maxIntervalMs;
  return Math.min(interval * 2, cap);
}

async function taskFailure(
  reader: TaskReader,
  status: TaskStatus,
  tailLines: number,
): Promise<Error> {
  const exitstatus = status.exitstatus ?? "unknown";
  let logTail: string[] = [];
  try {
    // The log's length is unknown up front: read it all (task logs are short), keep the end.
    const lines = await reader.taskLog(status.upid, { start: 0, limit: 0 });
    logTail = lines.slice(-tailLines).map((line) => line.t);
  } catch {
    // The failure itself matters more than its log.
  }
  const message = `Proxmox task ${status.type} ${status.id} failed: ${exitstatus}` +
    (logTail.length > 0 ? `\n${logTail.join("\n")}` : "");
  const context = { upid: status.upid, pveMessage: exitstatus };
  const classified = classifyPveMessage(message, exitstatus, context);
  if (classified !== undefined) {
    classified.details.logTail = logTail;
    return classified;
  }
  return new PveTaskFailedError(message, { upid: status.upid, exitstatus, logTail }, context);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
