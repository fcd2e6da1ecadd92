/** The views of `deno task replay`: list, timeline, state at a point, verify. */
import type {
  CorruptEventError,
  EventStore,
  QuarantinedStream,
  RecordedEvent,
} from "../store/mod.ts";
import type { ContainerContext } from "../machines/container_context.ts";
import type { ImageContext } from "../machines/image_context.ts";
import {
  type AnyFoldState,
  foldEvent,
  type FoldProblem,
  isStreamKind,
  machines,
} from "../machines/fold.ts";
import { foldLog, type StreamSummary } from "../machines/log_fold.ts";
import { projectionNames, type StreamDoc } from "../machines/projections.ts";
import { redactContext, redactPayload } from "../machines/redact.ts";
import type { SandboxContext } from "../machines/sandbox_context.ts";
import { eventDetail } from "./event_detail.ts";
import { isoTime, type Output, table } from "./output.ts";
import type { ReplayArgs } from "./replay.ts";

type ViewArgs = Pick<ReplayArgs, "at" | "json">;

const shortId = (id: string) => id.length > 13 ? id.slice(0, 13) : id;

function untilOptions(at: ViewArgs["at"]) {
  if (at === undefined) return {};
  return "seq" in at ? { untilSeq: at.seq } : { untilTime: at.time };
}

function within(event: RecordedEvent, at: ViewArgs["at"]): boolean {
  if (at === undefined) return true;
  return "seq" in at ? event.seq <= at.seq : event.time <= at.time;
}

/**
 * A human name for a stream: the pod's namespace/name, the container's name, an image's tag
 * (or where it came from).
 */
function nameOf(kind: string, state: AnyFoldState | null): string {
  if (state === null) return "";
  if (kind === "sandbox") {
    const m = (state.context as SandboxContext).metadata;
    return m.name === "" ? "" : `${m.namespace}/${m.name}`;
  }
  if (kind === "container") return (state.context as ContainerContext).name;
  if (kind === "image") {
    const c = state.context as ImageContext;
    const source = c.source?.kind === "registry" ? c.source.reference : c.source?.archive;
    return c.repoTags[0] ?? source ?? c.imageId;
  }
  return "";
}

function summaryJson(s: StreamSummary) {
  return {
    stream: s.stream,
    kind: s.kind,
    name: nameOf(s.kind, s.state),
    state: s.state?.value ?? null,
    version: s.version,
    events: s.events,
    createdAt: isoTime(s.firstTime),
    updatedAt: isoTime(s.lastTime),
    lastEvent: s.lastType,
  };
}

function quarantineLine(q: QuarantinedStream): string {
  return `! quarantined ${q.kind} ${q.stream}` +
    `${q.seq === null ? "" : ` at seq ${q.seq}`} since ${isoTime(q.time)}: ${q.reason}`;
}

/** Every stream with its kind, state and last event time (at a point, with --at). */
export function listView(store: EventStore, args: ViewArgs, out: Output): number {
  const fold = foldLog(store, untilOptions(args.at));
  const streams = [...fold.streams.values()];
  const quarantined = store.quarantined();
  if (args.json) {
    out.line(JSON.stringify(
      {
        streams: streams.map(summaryJson),
        events: fold.events,
        problems: fold.problems.length,
        quarantined,
      },
      null,
      2,
    ));
    return 0;
  }
  out.line(table(
    ["STREAM", "KIND", "NAME", "STATE", "VERSION", "LAST EVENT", "AT"],
    streams.map((s) => [
      shortId(s.stream),
      s.kind,
      nameOf(s.kind, s.state),
      s.state?.value ?? "?",
      String(s.version),
      s.lastType,
      isoTime(s.lastTime),
    ]),
  ));
  out.line(`${streams.length} streams, ${fold.events} events`);
  for (const q of quarantined) out.line(quarantineLine(q));
  if (fold.problems.length > 0) {
    out.line(`${fold.problems.length} events could not be folded: run replay --verify`);
  }
  return 0;
}

interface TimelineEntry {
  event: RecordedEvent;
  stateAfter: string;
  problem: string | undefined;
}

function timeline(store: EventStore, stream: string, at: ViewArgs["at"]) {
  const corrupt: CorruptEventError[] = [];
  const events = store.readStream(stream, 1, (e) => corrupt.push(e)).filter((e) => within(e, at));
  const kind = store.streamInfo(stream)!.kind;
  let state: AnyFoldState | null = isStreamKind(kind) ? machines[kind].initialState(stream) : null;
  const entries: TimelineEntry[] = events.map((event) => {
    if (state === null) {
      return { event, stateAfter: "?", problem: `unknown stream kind "${kind}"` };
    }
    const step = foldEvent(kind as "sandbox", state, event, { checkPayload: true });
    if (step.ok) state = step.state;
    return { event, stateAfter: state.value, problem: step.ok ? undefined : step.reason };
  });
  return { kind, entries, state, corrupt };
}

/** The stream's events, each with the state it led to; illegal ones flagged. */
export function timelineView(
  store: EventStore,
  stream: string,
  args: ViewArgs,
  out: Output,
): number {
  const { kind, entries, state, corrupt } = timeline(store, stream, args.at);
  if (args.json) {
    out.line(JSON.stringify(
      {
        stream,
        kind,
        state: state?.value ?? null,
        events: entries.map(({ event, stateAfter, problem }) => ({
          seq: event.seq,
          version: event.version,
          time: isoTime(event.time),
          type: event.type,
          typeVersion: event.typeVersion,
          data: redactPayload(event.type, event.data),
          meta: event.meta,
          stateAfter,
          ...(problem === undefined ? {} : { problem }),
        })),
        corrupt: corrupt.map((e) => ({ seq: e.seq, error: e.message })),
      },
      null,
      2,
    ));
    return 0;
  }
  out.line(`${kind} ${stream}${state ? `  ${nameOf(kind, state)}` : ""}`);
  out.line(table(
    ["TIME", "SEQ", "VER", "EVENT", "STATE AFTER", "DETAIL"],
    entries.map(({ event, stateAfter, problem }) => [
      isoTime(event.time),
      String(event.seq),
      String(event.version),
      event.type,
      problem === undefined ? stateAfter : `${stateAfter}  ! ${problem}`,
      eventDetail(redactPayload(event.type, event.data)),
    ]),
  ));
  for (const e of corrupt) out.line(`! ${e.message}`);
  return 0;
}

/** The stream's state (redacted) after the events up to --at. */
export function stateView(store: EventStore, stream: string, args: ViewArgs, out: Output): number {
  const { kind, entries, state } = timeline(store, stream, args.at);
  const last = entries.at(-1)?.event;
  const view = {
    stream,
    kind,
    at: last === undefined
      ? null
      : { seq: last.seq, version: last.version, time: isoTime(last.time) },
    state: state?.value ?? null,
    context: state === null ? null : redactContext(kind, state.context),
  };
  if (args.json) {
    out.line(JSON.stringify(view, null, 2));
    return 0;
  }
  out.line(`${kind} ${stream}`);
  out.line(
    view.at === null
      ? "no events at that point"
      : `at seq ${view.at.seq} (version ${view.at.version}, ${view.at.time}): ${view.state}`,
  );
  out.line(JSON.stringify(view.context, null, 2));
  return 0;
}

/**
 * Re-folds every stream through today's machines: illegal transitions, unknown events,
 * malformed payloads and corrupt rows, and projections that differ from the fold.
 */
export function verifyView(store: EventStore, args: ViewArgs, out: Output): number {
  const fold = foldLog(store, { checkPayload: true });
  const problems: FoldProblem[] = [...fold.problems];
  const quarantined = store.quarantined();
  const setAside = new Set(quarantined.map((q) => q.stream));
  for (const q of quarantined) {
    if (problems.some((p) => p.stream === q.stream && p.seq === q.seq)) continue;
    problems.push({
      stream: q.stream,
      seq: q.seq ?? 0,
      version: 0,
      type: "-",
      state: "quarantined",
      reason: q.reason,
    });
  }
  if (store.hasProjections) {
    problems.push(...projectionDrift(store, fold.streams, setAside));
  }
  problems.sort((a, b) => a.seq - b.seq);
  if (args.json) {
    out.line(JSON.stringify(
      { streams: fold.streams.size, events: fold.events, problems },
      null,
      2,
    ));
  } else {
    if (problems.length > 0) {
      out.line(table(
        ["STREAM", "SEQ", "EVENT", "IN STATE", "PROBLEM"],
        problems.map((p) => [shortId(p.stream), String(p.seq), p.type, p.state, p.reason]),
      ));
    }
    out.line(
      `${fold.streams.size} streams, ${fold.events} events: ` +
        (problems.length === 0
          ? "every event is a legal transition"
          : `${problems.length} problems`),
    );
  }
  return problems.length === 0 ? 0 : 1;
}

function projectionDrift(
  store: EventStore,
  streams: Map<string, StreamSummary>,
  setAside: Set<string>,
): FoldProblem[] {
  const problems: FoldProblem[] = [];
  for (const s of streams.values()) {
    if (!isStreamKind(s.kind) || s.state === null || setAside.has(s.stream)) continue;
    const row = store.getProjection<StreamDoc<unknown>>(projectionNames[s.kind], s.stream);
    const final = machines[s.kind].isFinal(s.state.value);
    const drift = (reason: string) =>
      problems.push({
        stream: s.stream,
        seq: s.lastSeq,
        version: s.version,
        type: "-",
        state: s.state!.value,
        reason,
      });
    if (final) {
      if (row !== undefined) drift("a final stream still has a projection row");
      continue;
    }
    if (row === undefined) drift("projection row missing");
    else if (row.version !== s.version || row.doc.state !== s.state.value) {
      drift(`projection says ${row.doc.state} at version ${row.version}`);
    } else if (JSON.stringify(row.doc.context) !== JSON.stringify(s.state.context)) {
      drift("projection context differs from the fold");
    }
  }
  return problems;
}
