/**
 * Protobuf encoding of the two big list responses, written directly from their plain message
 * objects: sizes first, then one buffer filled in one pass. The generic path (protobufjs
 * `fromObject` + `encode`) takes ~80–150 ms for 10,000 containers here. A test checks that the
 * output decodes to exactly what the generic encoder's output decodes to.
 */
import type { Message } from "./convert.ts";
import { concatBytes } from "../../lib/bytes.ts";

type Field =
  | { n: number; key: string; kind: "string" | "uint" | "int64" | "map" }
  | { n: number; key: string; kind: "enum"; values: Record<string, number> }
  | { n: number; key: string; kind: "message"; fields: readonly Field[] };

const containerMessage: readonly Field[] = [
  { n: 1, key: "id", kind: "string" },
  { n: 2, key: "pod_sandbox_id", kind: "string" },
  {
    n: 3,
    key: "metadata",
    kind: "message",
    fields: [{ n: 1, key: "name", kind: "string" }, { n: 2, key: "attempt", kind: "uint" }],
  },
  {
    n: 4,
    key: "image",
    kind: "message",
    fields: [{ n: 1, key: "image", kind: "string" }, { n: 2, key: "annotations", kind: "map" }],
  },
  { n: 5, key: "image_ref", kind: "string" },
  {
    n: 6,
    key: "state",
    kind: "enum",
    values: {
      CONTAINER_CREATED: 0,
      CONTAINER_RUNNING: 1,
      CONTAINER_EXITED: 2,
      CONTAINER_UNKNOWN: 3,
    },
  },
  { n: 7, key: "created_at", kind: "int64" },
  { n: 8, key: "labels", kind: "map" },
  { n: 9, key: "annotations", kind: "map" },
  { n: 10, key: "image_id", kind: "string" },
];

const podSandboxMessage: readonly Field[] = [
  { n: 1, key: "id", kind: "string" },
  {
    n: 2,
    key: "metadata",
    kind: "message",
    fields: [
      { n: 1, key: "name", kind: "string" },
      { n: 2, key: "uid", kind: "string" },
      { n: 3, key: "namespace", kind: "string" },
      { n: 4, key: "attempt", kind: "uint" },
    ],
  },
  { n: 3, key: "state", kind: "enum", values: { SANDBOX_READY: 0, SANDBOX_NOTREADY: 1 } },
  { n: 4, key: "created_at", kind: "int64" },
  { n: 5, key: "labels", kind: "map" },
  { n: 6, key: "annotations", kind: "map" },
  { n: 7, key: "runtime_handler", kind: "string" },
];

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4; // a surrogate pair: one 4-byte sequence
      i++;
    } else n += 3;
  }
  return n;
}

function varintSize(v: number): number {
  let n = 1;
  while (v > 0x7f) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/**
 * A non-negative decimal int64 as two 32-bit halves, without BigInt (which allocates, and
 * ten thousand timestamps a call add up).
 */
function int64Halves(decimal: string): [lo: number, hi: number] {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < decimal.length; i++) {
    const digit = decimal.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) throw new RangeError(`Not a decimal int64: "${decimal}"`);
    // (hi, lo) * 10 + digit, in 32-bit halves.
    const low = lo * 10 + digit;
    lo = low >>> 0;
    hi = (hi * 10 + Math.floor(low / 0x1_0000_0000)) >>> 0;
  }
  return [lo, hi];
}

function int64Size(decimal: string): number {
  let [lo, hi] = int64Halves(decimal);
  let n = 1;
  while (hi !== 0 || lo > 0x7f) {
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
    n++;
  }
  return n;
}

/** Proto3 leaves defaults off the wire. */
function isDefault(field: Field, value: unknown): boolean {
  switch (field.kind) {
    case "string":
      return value === undefined || value === null || value === "";
    case "uint":
      return !value;
    case "int64":
      return value === undefined || value === null || value === "" || value === "0";
    case "enum":
      return !field.values[value as string];
    case "map":
      return value === undefined || value === null;
    case "message":
      return value === undefined || value === null;
  }
}

function entrySize(key: string, value: string): number {
  const k = utf8Length(key);
  const v = utf8Length(value);
  return (k === 0 ? 0 : 1 + varintSize(k) + k) + (v === 0 ? 0 : 1 + varintSize(v) + v);
}

/** Body size of a message (without its own tag and length). */
function messageSize(fields: readonly Field[], m: Message): number {
  let size = 0;
  for (const field of fields) {
    const value = m[field.key];
    if (isDefault(field, value)) continue;
    const tag = varintSize(field.n * 8);
    switch (field.kind) {
      case "string": {
        const n = utf8Length(value);
        size += tag + varintSize(n) + n;
        break;
      }
      case "uint":
        size += tag + varintSize(value);
        break;
      case "int64":
        size += tag + int64Size(value);
        break;
      case "enum":
        size += tag + varintSize(field.values[value]!);
        break;
      case "map":
        for (const [k, v] of Object.entries(value as Record<string, string>)) {
          const n = entrySize(k, v);
          size += tag + varintSize(n) + n;
        }
        break;
      case "message": {
        const n = messageSize(field.fields, value);
        size += tag + varintSize(n) + n;
        break;
      }
    }
  }
  return size;
}

const utf8 = new TextEncoder();

class Writer {
  readonly buffer: Uint8Array;
  at = 0;

  constructor(size: number) {
    this.buffer = new Uint8Array(size);
  }

  varint(v: number): void {
    while (v > 0x7f) {
      this.buffer[this.at++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buffer[this.at++] = v;
  }

  int64(decimal: string): void {
    let [lo, hi] = int64Halves(decimal);
    while (hi !== 0 || lo > 0x7f) {
      this.buffer[this.at++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.buffer[this.at++] = lo;
  }

  string(n: number, s: string): void {
    if (s === "") return;
    this.varint(n * 8 + 2);
    const length = utf8Length(s);
    this.varint(length);
    if (length === s.length) {
      // ASCII (ids, digests, most names): byte by byte, no view to allocate.
      for (let i = 0; i < s.length; i++) this.buffer[this.at++] = s.charCodeAt(i);
    } else {
      this.at += utf8.encodeInto(s, this.buffer.subarray(this.at)).written;
    }
  }

  message(fields: readonly Field[], m: Message): void {
    for (const field of fields) {
      const value = m[field.key];
      if (isDefault(field, value)) continue;
      switch (field.kind) {
        case "string":
          this.string(field.n, value);
          break;
        case "uint":
          this.varint(field.n * 8);
          this.varint(value);
          break;
        case "int64":
          this.varint(field.n * 8);
          this.int64(value);
          break;
        case "enum":
          this.varint(field.n * 8);
          this.varint(field.values[value]!);
          break;
        case "map":
          for (const [k, v] of Object.entries(value as Record<string, string>)) {
            this.varint(field.n * 8 + 2);
            this.varint(entrySize(k, v));
            this.string(1, k);
            this.string(2, v);
          }
          break;
        case "message":
          this.varint(field.n * 8 + 2);
          this.varint(messageSize(field.fields, value));
          this.message(field.fields, value);
          break;
      }
    }
  }
}

/** One repeated entry (field 1 of the response) as bytes: tag, length, message. */
function encodeEntry(item: readonly Field[], m: Message): Uint8Array {
  const size = messageSize(item, m);
  const w = new Writer(1 + varintSize(size) + size);
  w.varint(1 * 8 + 2);
  w.varint(size);
  w.message(item, m);
  return w.buffer;
}

/**
 * Encoded list entries kept between calls, as the kubelet lists every second or so. Entries
 * are keyed by their item object: the runtime hands out the same item until what it shows
 * changes, so an unchanged entry is not encoded again, and one replaced goes with its item.
 * A listing of exactly the items of the last one answers the same bytes.
 */
export class EncodedListCache<T extends object> {
  readonly #fields: readonly Field[];
  readonly #message: (item: T) => Message;
  readonly #entries = new WeakMap<T, Uint8Array>();
  #last: { items: readonly T[]; bytes: Uint8Array } | undefined;

  constructor(kind: "containers" | "sandboxes", message: (item: T) => Message) {
    this.#fields = kind === "containers" ? containerMessage : podSandboxMessage;
    this.#message = message;
  }

  /** The response bytes for these entries, in this order. */
  encode(items: readonly T[]): Uint8Array {
    const last = this.#last;
    if (last !== undefined && sameItems(last.items, items)) return last.bytes;
    const parts = items.map((item) => {
      let bytes = this.#entries.get(item);
      if (bytes === undefined) {
        bytes = encodeEntry(this.#fields, this.#message(item));
        this.#entries.set(item, bytes);
      }
      return bytes;
    });
    const bytes = concatBytes(parts);
    this.#last = { items, bytes };
    return bytes;
  }
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** runtime.v1.ListContainersResponse from `{ containers: Container[] }`. */
export function encodeListContainersResponse(response: Message): Uint8Array {
  return concatBytes(
    (response.containers as Message[]).map((m) => encodeEntry(containerMessage, m)),
  );
}

/** runtime.v1.ListPodSandboxResponse from `{ items: PodSandbox[] }`. */
export function encodeListPodSandboxResponse(response: Message): Uint8Array {
  return concatBytes((response.items as Message[]).map((m) => encodeEntry(podSandboxMessage, m)));
}
