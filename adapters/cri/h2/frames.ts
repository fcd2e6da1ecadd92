/**
 * HTTP/2 frame layout (RFC 9113 §4 and §6): type and flag numbers, the 9-byte frame header,
 * and builders for the frames a server sends.
 */

/** Frame type numbers (RFC 9113 §6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags; their meaning depends on the frame type. */
export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** SETTINGS parameter identifiers (RFC 9113 §6.5.2). */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** What every client sends first (RFC 9113 §3.4). */
export const CLIENT_PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** Every frame starts with 9 bytes: length (24 bits), type, flags, stream id. */
export const FRAME_HEADER_LENGTH = 9;
/** SETTINGS_MAX_FRAME_SIZE's default and smallest allowed value. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
/** SETTINGS_MAX_FRAME_SIZE's largest allowed value. */
export const MAX_ALLOWED_FRAME_SIZE = 16_777_215;
/** SETTINGS_INITIAL_WINDOW_SIZE's default, and the connection window's initial size. */
export const DEFAULT_WINDOW_SIZE = 65_535;
/** The largest a flow-control window may grow (RFC 9113 §6.9.1). */
export const MAX_WINDOW_SIZE = 2 ** 31 - 1;

/** The 9-byte header every frame starts with. */
export interface FrameHeader {
  length: number;
  type: number;
  flags: number;
  streamId: number;
}

/** Reads a frame header at `offset`; the caller has checked 9 bytes are there. */
export function readFrameHeader(bytes: Uint8Array, offset: number): FrameHeader {
  return {
    length: (bytes[offset]! << 16) | (bytes[offset + 1]! << 8) | bytes[offset + 2]!,
    type: bytes[offset + 3]!,
    flags: bytes[offset + 4]!,
    // The reserved high bit is ignored on receipt.
    streamId: readUint31(bytes, offset + 5),
  };
}

/** A big-endian 31-bit value, its reserved high bit dropped. */
export function readUint31(bytes: Uint8Array, offset: number): number {
  return readUint32(bytes, offset) & 0x7fff_ffff;
}

/** A big-endian 32-bit value. */
export function readUint32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) |
    bytes[offset + 3]!) >>> 0;
}

/** A frame header for a payload sent separately. */
export function frameHeader(
  type: number,
  flags: number,
  streamId: number,
  length: number,
): Uint8Array {
  const header = new Uint8Array(FRAME_HEADER_LENGTH);
  writeFrameHeader(header, { type, flags, streamId, length });
  return header;
}

/** A whole frame: header and payload in one buffer. */
export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_LENGTH + payload.length);
  writeFrameHeader(bytes, { type, flags, streamId, length: payload.length });
  bytes.set(payload, FRAME_HEADER_LENGTH);
  return bytes;
}

function writeFrameHeader(bytes: Uint8Array, header: FrameHeader): void {
  bytes[0] = header.length >>> 16;
  bytes[1] = (header.length >>> 8) & 0xff;
  bytes[2] = header.length & 0xff;
  bytes[3] = header.type;
  bytes[4] = header.flags;
  writeUint32(bytes, 5, header.streamId);
}

function writeUint32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = (value >>> 16) & 0xff;
  bytes[offset + 2] = (value >>> 8) & 0xff;
  bytes[offset + 3] = value & 0xff;
}

/** A SETTINGS frame with these parameters, in order. */
export function settingsFrame(settings: readonly [id: number, value: number][]): Uint8Array {
  const payload = new Uint8Array(settings.length * 6);
  settings.forEach(([id, value], i) => {
    payload[i * 6] = id >>> 8;
    payload[i * 6 + 1] = id & 0xff;
    writeUint32(payload, i * 6 + 2, value);
  });
  return frame(FrameType.SETTINGS, 0, 0, payload);
}

/** Acknowledges the peer's SETTINGS. */
export function settingsAckFrame(): Uint8Array {
  return frame(FrameType.SETTINGS, Flag.ACK, 0);
}

/** Answers a PING with its 8 opaque bytes. */
export function pingAckFrame(opaque: Uint8Array): Uint8Array {
  return frame(FrameType.PING, Flag.ACK, 0, opaque);
}

/** Grows the peer's window for a stream (0: the connection) by `increment`. */
export function windowUpdateFrame(streamId: number, increment: number): Uint8Array {
  const payload = new Uint8Array(4);
  writeUint32(payload, 0, increment);
  return frame(FrameType.WINDOW_UPDATE, 0, streamId, payload);
}

/** Ends one stream with an error code (NO_ERROR after a complete answer). */
export function rstStreamFrame(streamId: number, code: number): Uint8Array {
  const payload = new Uint8Array(4);
  writeUint32(payload, 0, code);
  return frame(FrameType.RST_STREAM, 0, streamId, payload);
}

/** GOAWAY naming the last stream we processed; `debug` is for humans reading a capture. */
export function goawayFrame(lastStreamId: number, code: number, debug = ""): Uint8Array {
  const text = new TextEncoder().encode(debug);
  const payload = new Uint8Array(8 + text.length);
  writeUint32(payload, 0, lastStreamId);
  writeUint32(payload, 4, code);
  payload.set(text, 8);
  return frame(FrameType.GOAWAY, 0, 0, payload);
}

/**
 * A header block as HEADERS plus as many CONTINUATION frames as `maxFrameSize` needs; the
 * frames must go out back to back.
 */
export function headerFrames(
  streamId: number,
  block: Uint8Array,
  options: { endStream: boolean; maxFrameSize: number },
): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let offset = 0;
  do {
    const fragment = block.subarray(offset, offset + options.maxFrameSize);
    const first = offset === 0;
    offset += fragment.length;
    const last = offset >= block.length;
    const flags = (last ? Flag.END_HEADERS : 0) |
      (first && options.endStream ? Flag.END_STREAM : 0);
    frames.push(
      frame(first ? FrameType.HEADERS : FrameType.CONTINUATION, flags, streamId, fragment),
    );
  } while (offset < block.length);
  return frames;
}
