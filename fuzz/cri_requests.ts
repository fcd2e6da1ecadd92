/**
 * Generated and mutated CRI requests: a random message of the method's request type
 * (random field values, huge repeated fields, out-of-range enums), then, often, its bytes
 * broken — truncated, flipped, extended, wrapped in deeply nested unknown fields, strings made
 * invalid UTF-8. Seeded: a run reproduces from its seed.
 */
import protobuf from "protobufjs/light.js";
import descriptor from "../proto/descriptor.json" with { type: "json" };
import { Random } from "../tests/_support/random.ts";

export interface FuzzMethod {
  path: string;
  responseStream: boolean;
  request: protobuf.Type;
}

/**
 * A pull would reach beyond this machine (a reference names any registry): not fuzzed, nor is
 * pve-cri's own ImageTool service (pulls, and imports of any host file by path).
 */
const OFF_LIMITS = new Set(["/runtime.v1.ImageService/PullImage", "/pvecri.v1.ImageTool/Pull"]);

/** Every CRI method pve-cri serves, but those off limits. */
export function fuzzMethods(): FuzzMethod[] {
  const root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace).resolveAll();
  const methods: FuzzMethod[] = [];
  for (const service of ["runtime.v1.RuntimeService", "runtime.v1.ImageService"]) {
    for (const method of root.lookupService(service).methodsArray) {
      if (OFF_LIMITS.has(`/${service}/${method.name}`)) continue;
      methods.push({
        path: `/${service}/${method.name}`,
        responseStream: method.responseStream === true,
        request: method.resolvedRequestType!,
      });
    }
  }
  return methods;
}

/** The bytes of one request for `method`. */
export function fuzzRequest(random: Random, method: FuzzMethod): Uint8Array {
  // Half the sandboxes start from a valid config, so that pods are made (and machines, events
  // and projections exercised), then take the same mutations as any request.
  const valid = method.path === RUN_POD_SANDBOX && random.chance(0.5);
  const message = valid ? validSandbox(random) : randomMessage(random, method.request, 0);
  let bytes: Uint8Array;
  try {
    bytes = method.request.encode(method.request.fromObject(message)).finish();
  } catch {
    bytes = randomBytes(random, random.int(64));
  }
  bytes = random.chance(0.4) ? mutate(random, bytes) : bytes;
  return bytes.length <= MAX_REQUEST_BYTES ? bytes : bytes.subarray(0, MAX_REQUEST_BYTES);
}

const RUN_POD_SANDBOX = "/runtime.v1.RuntimeService/RunPodSandbox";

/** A RunPodSandboxRequest the memory backend accepts, its values random within the rules. */
function validSandbox(random: Random): Record<string, unknown> {
  const labels: Record<string, string> = {};
  for (let i = random.int(8); i > 0; i--) {
    labels[`l${random.int(100)}`] = random.hex(random.int(40));
  }
  return {
    config: {
      metadata: { name: `fuzz-${random.hex(8)}`, uid: random.hex(16), namespace: "fuzz" },
      hostname: random.chance(0.5) ? `h-${random.hex(6)}` : "",
      labels,
      annotations: { note: "x".repeat(random.int(4_000)) },
      dns_config: random.chance(0.5)
        ? { servers: ["10.88.0.10"], searches: ["fuzz.svc.cluster.local"], options: ["ndots:5"] }
        : undefined,
    },
  };
}

/** Within the server's initial stream window: sent whole without flow control. */
export const MAX_REQUEST_BYTES = 900 * 1024;

function randomMessage(
  random: Random,
  type: protobuf.Type,
  depth: number,
): Record<string, unknown> {
  const message: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    if (!random.chance(0.6)) continue;
    if (field.map) {
      const map: Record<string, unknown> = {};
      for (let i = random.int(4); i > 0; i--) {
        map[randomString(random)] = scalar(random, field.type, field.resolvedType, depth);
      }
      message[field.name] = map;
    } else if (field.repeated) {
      // Now and then a huge repeated field, of small items (the request stays under 1 MiB,
      // which the client sends without waiting for window updates).
      const huge = random.chance(0.02);
      message[field.name] = Array.from(
        { length: huge ? 10_000 + random.int(40_000) : random.int(4) },
        () =>
          huge ? small(random, field.type) : scalar(random, field.type, field.resolvedType, depth),
      );
    } else {
      message[field.name] = scalar(random, field.type, field.resolvedType, depth);
    }
  }
  return message;
}

function scalar(
  random: Random,
  type: string,
  resolved: protobuf.Type | protobuf.Enum | null,
  depth: number,
): unknown {
  if (resolved instanceof protobuf.Type) {
    return depth > 4 ? {} : randomMessage(random, resolved, depth + 1);
  }
  if (resolved instanceof protobuf.Enum) {
    const values = Object.values(resolved.values);
    return random.chance(0.8) ? random.pick(values) : random.int(2 ** 31);
  }
  switch (type) {
    case "string":
      return randomString(random);
    case "bytes":
      return randomBytes(random, random.int(32));
    case "bool":
      return random.chance(0.5);
    case "double":
    case "float":
      return random.pick([0, -1, 1.5, Number.MAX_VALUE, Number.NaN, Infinity]);
    case "int64":
    case "uint64":
    case "sint64":
    case "fixed64":
    case "sfixed64":
      return random.pick(["0", "-1", "9223372036854775807", "-9223372036854775808", "1700000000"]);
    default:
      return random.pick([0, 1, -1, 2 ** 31 - 1, -(2 ** 31), random.int(1000)]);
  }
}

function small(random: Random, type: string): unknown {
  return type === "string" ? `s${random.int(10)}` : type === "bool" ? true : 0;
}

function randomString(random: Random): string {
  switch (random.int(6)) {
    case 0:
      return "";
    case 1:
      return random.hex(64);
    case 2:
      return "x".repeat(random.int(70_000)); // past the CRI's length limits
    case 3:
      return "../../etc/passwd";
    case 4:
      return "\u0000\uffff\u{1f600}ü\n\t";
    default:
      return `n-${random.int(100)}`;
  }
}

function randomBytes(random: Random, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => random.int(256));
}

function mutate(random: Random, bytes: Uint8Array): Uint8Array {
  switch (random.int(5)) {
    case 0: // truncated
      return bytes.subarray(0, random.int(bytes.length + 1));
    case 1: { // bytes flipped (strings become invalid UTF-8, tags and lengths lie)
      const out = bytes.slice();
      for (let i = 0; i < 1 + random.int(4) && out.length > 0; i++) {
        out[random.int(out.length)] = random.int(256);
      }
      return out;
    }
    case 2: // garbage appended
      return concat(bytes, randomBytes(random, 1 + random.int(64)));
    case 3: // a field of invalid UTF-8 where a string may be expected (field 1, wire type 2)
      return concat(Uint8Array.of(0x0a, 4, 0xff, 0xfe, 0xc0, 0x80), bytes);
    default:
      return concat(bytes, nested(random.int(2) === 0 ? 100 : 10_000));
  }
}

/** An unknown length-delimited field (number 15) nested `depth` times. */
function nested(depth: number): Uint8Array {
  let inner: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < depth; i++) inner = concat(fieldHeader(inner.length), inner);
  return inner;
}

function fieldHeader(length: number): Uint8Array {
  const varint: number[] = [];
  let n = length;
  do {
    varint.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Uint8Array.of(0x7a, ...varint);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
