/** Metadata of an event: who asked for it. Free-form, but never secrets. */
export type EventMeta = Record<string, unknown>;

/** An event as a caller hands it to the store. */
export interface EventInput {
  type: string;
  /** The version of this event type's payload shape. */
  typeVersion: number;
  data: unknown;
  meta?: EventMeta;
}

/** An event as stored: globally ordered by `seq`, ordered in its stream by `version`. */
export interface RecordedEvent {
  seq: number;
  stream: string;
  kind: string;
  /** 1 for the stream's first event. */
  version: number;
  type: string;
  typeVersion: number;
  data: unknown;
  meta: EventMeta;
  /** Milliseconds since the epoch, when the store accepted the event. */
  time: number;
}

/**
 * What the caller believes the stream's version is: an exact number, `"no_stream"` (must not
 * exist yet), `"stream_exists"`, or `"any"`.
 */
export type ExpectedVersion = number | "no_stream" | "stream_exists" | "any";

export interface AppendOptions {
  expectedVersion?: ExpectedVersion;
  /** The stream's kind; required when the append creates the stream. */
  kind?: string;
  /** Close the stream after these events: later appends fail with StreamClosedError. */
  close?: boolean;
  /** The events' time (ms since the epoch) when the caller already decided on it. */
  time?: number;
}

/** One stream's part of a multi-stream append. */
export interface StreamAppend {
  stream: string;
  events: readonly EventInput[];
  options?: AppendOptions;
}

export interface AppendResult {
  /** The stream's version after the append. */
  nextVersion: number;
  events: RecordedEvent[];
}

export interface StreamInfo {
  stream: string;
  kind: string;
  version: number;
  closed: boolean;
  /** Time of the first and of the last event, ms since the epoch. */
  createdAt: number;
  updatedAt: number;
}

/** One stream's row in a projection. */
export interface ProjectionRow<Doc = unknown, Summary = unknown> {
  stream: string;
  /** A value unique among the projection's rows (e.g. a reserved name), or null. */
  key: string | null;
  /** The stream version this row reflects. */
  version: number;
  /** The few fields list views and startup need; cheap to read for every row. */
  summary: Summary;
  doc: Doc;
}

/** What a projector returns for a stream: its row, less what the store fills in. */
export interface ProjectionUpdate<Doc = unknown, Summary = unknown> {
  key: string | null;
  doc: Doc;
  /** Omitted: stored as null. */
  summary?: Summary;
}

/** A row without its document: what listing every row costs little. */
export type ProjectionSummary<Summary = unknown> = Omit<ProjectionRow<never, Summary>, "doc">;

/**
 * Keeps a read model up to date. Runs inside the append, so the model never lags the log.
 * `store/` knows nothing of what the rows mean: the machines' side registers projectors.
 */
export interface Projector<Doc = unknown, Summary = unknown> {
  name: string;
  /** Bump when `evolve` changes meaning: the store then rebuilds the projection from events. */
  revision: number;
  /** Which stream kinds this projector follows. */
  kinds: readonly string[];
  /**
   * The stream's new row after these events (same stream, in order), or null to drop the row.
   * Must be pure: the store rebuilds projections by calling it again.
   */
  evolve(
    current: ProjectionRow<Doc, Summary> | undefined,
    events: readonly RecordedEvent[],
  ): ProjectionUpdate<Doc, Summary> | null;
}

/** Turns an old payload into today's shape. Unknown types pass through unchanged. */
export type Upcaster = (
  event: { type: string; typeVersion: number; data: unknown },
) => { typeVersion: number; data: unknown };

export type Unsubscribe = () => void;
export type EventListener = (events: readonly RecordedEvent[]) => void;
