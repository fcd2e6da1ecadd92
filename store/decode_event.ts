import { CorruptEventError } from "./errors.ts";
import type { EventMeta, RecordedEvent, Upcaster } from "./types.ts";

/** A row of `events` in column order, as read with setReturnArrays. */
export type EventRow = [
  seq: number,
  streamId: number,
  version: number,
  type: unknown,
  typeVersion: unknown,
  data: unknown,
  meta: unknown,
  time: unknown,
];

export interface StreamName {
  name: string;
  kind: string;
}

/** Turns a stored row into an event, upcast to today's payload shape. */
export function decodeEvent(row: EventRow, stream: StreamName, upcast: Upcaster): RecordedEvent {
  const [seq, , version, type, typeVersion, dataText, metaText, time] = row;
  const corrupt = (reason: string) => new CorruptEventError(stream.name, seq, reason);
  if (typeof type !== "string" || type === "") throw corrupt("event type is not a string");
  if (typeof typeVersion !== "number" || !Number.isInteger(typeVersion) || typeVersion < 1) {
    throw corrupt(`type version ${JSON.stringify(typeVersion)} is not a positive integer`);
  }
  if (typeof time !== "number") throw corrupt("time is not a number");
  const data = parseJson(dataText, "data", corrupt);
  const meta = metaText === "{}" ? {} : parseJson(metaText, "meta", corrupt);
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) {
    throw corrupt("meta is not an object");
  }
  let current: { typeVersion: number; data: unknown };
  try {
    current = upcast({ type, typeVersion, data });
  } catch (error) {
    throw corrupt(`cannot upcast ${type} v${typeVersion}: ${String(error)}`);
  }
  return {
    seq,
    stream: stream.name,
    kind: stream.kind,
    version,
    type,
    typeVersion: current.typeVersion,
    data: current.data,
    meta: meta as EventMeta,
    time,
  };
}

function parseJson(
  text: unknown,
  column: string,
  corrupt: (reason: string) => CorruptEventError,
): unknown {
  if (typeof text !== "string") throw corrupt(`${column} is not text`);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw corrupt(`${column} is not JSON: ${(error as Error).message}`);
  }
}
