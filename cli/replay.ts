/**
 * `deno task replay`: diagnose the event log, read-only, beside a running server.
 *
 *   replay                      every stream: kind, name, state, version, last event time
 *   replay ID|PREFIX            the stream's timeline: time, seq, event, state after
 *   replay [ID] --at SEQ|TIME   the state(s) at that point of the log
 *   replay --verify             re-fold everything; list illegal or unknown events (exit 1)
 *   replay --drift              the running server's drift against Proxmox and the node
 *                               (replay_drift.ts; exit 1 when there is any)
 *   --json  --state-dir DIR  --busy-timeout MS
 *
 * Exit status: 0 fine, 1 verify found problems, 2 the log could not be read (or bad usage).
 */
import { RuntimeError } from "../lib/errors.ts";
import { databasePath, defaultStateDir } from "../lib/paths.ts";
import { upcastEvent } from "../machines/events.ts";
import { EventStore, StoreUnavailableError } from "../store/mod.ts";
import { listView, stateView, timelineView, verifyView } from "./replay_views.ts";
import { parseCommandLine, UsageError } from "../lib/command_line.ts";
import type { Output } from "./output.ts";

export const replayUsage =
  `Usage: deno task replay [ID|PREFIX] [--at SEQ|ISO-TIME] [--verify] [--json]
                         [--state-dir DIR] [--busy-timeout MS]
       deno task replay --drift [--json] [--state-dir DIR] [--http URL]

Reads the event log, read-only, beside a running server:
  (no ID)            every stream: kind, name, state, version, its last event and when
  ID|PREFIX          the stream's timeline: each event, what it carried, the state after
  --at SEQ|TIME      the state(s) at that point of the log
  --verify           re-fold everything; list illegal or unknown events and unreadable rows
  --drift            the running server's differences against Proxmox and the node
  --json             machine-readable output
  --state-dir DIR    default /var/lib/pve-cri as root, ./.pve-cri otherwise
  --busy-timeout MS  how long to wait for the writer's lock (default 5000)
  -h, --help         this text

Exit status: 0 fine, 1 --verify or --drift found something, 2 the log could not be read or
bad usage.`;

export interface ReplayArgs {
  stream: string | undefined;
  at: { seq: number } | { time: number } | undefined;
  verify: boolean;
  json: boolean;
  stateDir: string;
  busyTimeoutMs: number;
}

/** The options, or undefined for `--help`; throws UsageError. */
export function parseReplayArgs(args: string[]): ReplayArgs | undefined {
  const { values, positionals, help } = parseCommandLine(args, {
    at: { type: "string" },
    verify: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    "state-dir": { type: "string" },
    "busy-timeout": { type: "string" },
  });
  if (help) return undefined;
  if (positionals.length > 1) {
    throw new UsageError(`One stream at a time, got ${positionals.length}`);
  }
  const busy = values["busy-timeout"] === undefined ? 5000 : Number(values["busy-timeout"]);
  if (!Number.isInteger(busy) || busy < 0) {
    throw new UsageError(
      `--busy-timeout must be a number of milliseconds, got "${values["busy-timeout"]}"`,
    );
  }
  return {
    stream: positionals[0],
    at: values.at === undefined ? undefined : parseAt(values.at),
    verify: values.verify!,
    json: values.json!,
    stateDir: values["state-dir"] ?? defaultStateDir(),
    busyTimeoutMs: busy,
  };
}

function parseAt(value: string): { seq: number } | { time: number } {
  if (/^\d+$/.test(value)) return { seq: Number(value) };
  const time = Date.parse(value);
  if (Number.isNaN(time)) {
    throw new UsageError(`--at takes a seq number or an ISO time, got "${value}"`);
  }
  return { time };
}

/** Runs replay; returns the exit status. Never throws: every failure is one line on stderr. */
export function runReplay(args: string[], out: Output): number {
  let options: ReplayArgs | undefined;
  try {
    options = parseReplayArgs(args);
  } catch (error) {
    out.error(`pve-cri replay: ${(error as Error).message}`);
    return 2;
  }
  if (options === undefined) {
    out.line(replayUsage);
    return 0;
  }
  let store: EventStore | undefined;
  try {
    store = EventStore.open({
      path: databasePath(options.stateDir),
      readOnly: true,
      busyTimeoutMs: options.busyTimeoutMs,
      upcast: upcastEvent,
    });
    if (options.verify) return verifyView(store, options, out);
    if (options.stream !== undefined) {
      const stream = resolveStream(store, options.stream);
      return options.at === undefined
        ? timelineView(store, stream, options, out)
        : stateView(store, stream, options, out);
    }
    return listView(store, options, out);
  } catch (error) {
    out.error(`pve-cri replay: ${describe(error)}`);
    return 2;
  } finally {
    try {
      store?.close();
    } catch {
      // Closing a read-only connection cannot lose anything.
    }
  }
}

/** A stream id, or a prefix that names exactly one stream. */
function resolveStream(store: EventStore, idOrPrefix: string): string {
  if (store.streamInfo(idOrPrefix) !== undefined) return idOrPrefix;
  const matches = store.listStreams().filter((s) => s.stream.startsWith(idOrPrefix));
  if (matches.length === 1) return matches[0]!.stream;
  if (matches.length === 0) throw new UsageError(`No stream matches "${idOrPrefix}"`);
  throw new UsageError(
    `"${idOrPrefix}" matches ${matches.length} streams: give more of the id`,
  );
}

function describe(error: unknown): string {
  if (error instanceof StoreUnavailableError || error instanceof RuntimeError) {
    return error.message;
  }
  if (error instanceof UsageError) return error.message;
  return `unexpected error: ${error instanceof Error ? error.message : String(error)}`;
}
