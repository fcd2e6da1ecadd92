/**
 * Folds the whole log (or its prefix up to a seq or a time), stream by stream, in commit
 * order. Replay's views, `--verify`, the bench and the property tests all use it.
 */
import type { CorruptEventError, EventStore, RecordedEvent } from "../store/mod.ts";
import type { StreamKind } from "./events.ts";
import { type AnyFoldState, foldEvent, type FoldProblem, isStreamKind, machines } from "./fold.ts";

export interface StreamSummary {
  stream: string;
  kind: string;
  state: AnyFoldState | null;
  version: number;
  events: number;
  firstTime: number;
  lastTime: number;
  /** The last event's seq and type. */
  lastSeq: number;
  lastType: string;
}

export interface LogFold {
  streams: Map<string, StreamSummary>;
  problems: FoldProblem[];
  events: number;
}

export interface FoldLogOptions {
  /** Check every payload against its shape (verify); off for speed. */
  checkPayload?: boolean;
  /** Stop after this seq. */
  untilSeq?: number;
  /** Stop after this time (ms since the epoch). */
  untilTime?: number;
  /** Fold only these streams. */
  only?: ReadonlySet<string>;
  /** Called with each event that was folded, and the state it produced. */
  onEvent?: (event: RecordedEvent, state: AnyFoldState) => void;
}

const pageSize = 10_000;

export function foldLog(store: EventStore, options: FoldLogOptions = {}): LogFold {
  const streams = new Map<string, StreamSummary>();
  const problems: FoldProblem[] = [];
  const check = { checkPayload: options.checkPayload ?? false };
  let events = 0;
  const onCorrupt = (error: CorruptEventError) => {
    if (options.only !== undefined && !options.only.has(error.stream)) return;
    problems.push({
      stream: error.stream,
      seq: error.seq,
      version: 0,
      type: "?",
      state: streams.get(error.stream)?.state?.value ?? "?",
      reason: error.message,
    });
  };
  for (let from: number | undefined = 0; from !== undefined;) {
    const page = store.readPage(from, pageSize, onCorrupt, { meta: false });
    from = page.next;
    for (const event of page.events) {
      if (options.untilSeq !== undefined && event.seq > options.untilSeq) return done();
      if (options.untilTime !== undefined && event.time > options.untilTime) return done();
      if (options.only !== undefined && !options.only.has(event.stream)) continue;
      events++;
      let summary = streams.get(event.stream);
      if (summary === undefined) {
        summary = {
          stream: event.stream,
          kind: event.kind,
          state: isStreamKind(event.kind) ? machines[event.kind].initialState(event.stream) : null,
          version: 0,
          events: 0,
          firstTime: event.time,
          lastTime: event.time,
          lastSeq: event.seq,
          lastType: event.type,
        };
        streams.set(event.stream, summary);
      }
      summary.version = event.version;
      summary.events++;
      summary.lastTime = event.time;
      summary.lastSeq = event.seq;
      summary.lastType = event.type;
      if (summary.state === null) {
        problems.push(problem(event, "?", `unknown stream kind "${event.kind}"`));
        continue;
      }
      const step = foldEvent(event.kind as StreamKind, summary.state, event, check);
      if (step.ok) {
        summary.state = step.state;
        options.onEvent?.(event, step.state);
      } else problems.push(problem(event, summary.state.value, step.reason));
    }
  }
  return done();

  function done(): LogFold {
    return { streams, problems, events };
  }
}

function problem(event: RecordedEvent, state: string, reason: string): FoldProblem {
  return {
    stream: event.stream,
    seq: event.seq,
    version: event.version,
    type: event.type,
    state,
    reason,
  };
}
