import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { loadSync, type PackageDefinition } from "@grpc/proto-loader";
import { serviceMethods } from "../../../adapters/cri/proto_methods.ts";
import {
  CRI_PROTO_PATH,
  IMAGE_TOOL_PROTO_PATH,
  PROTO_LOADER_OPTIONS,
} from "../../../adapters/cri/rpc.ts";
import { currentDescriptor, DESCRIPTOR_PATH } from "../../../proto/descriptor.ts";
import {
  IMAGE_STREAM_METHODS,
  IMAGE_UNARY_METHODS,
  RUNTIME_STREAM_METHODS,
  RUNTIME_UNARY_METHODS,
} from "../../_support/cri_client.ts";
import { sharedPath } from "../../_support/shared_reference.ts";

const REFERENCE_PATH = sharedPath("cri/api.proto");
const haveReference = existsSync(REFERENCE_PATH);

// Loose shapes of proto-loader's descriptor objects, enough to read them.
interface FieldDescriptor {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
  oneofIndex?: number;
  proto3Optional?: boolean;
  options?: Record<string, unknown> | null;
}
interface MessageDescriptor {
  name: string;
  field: FieldDescriptor[];
  nestedType: MessageDescriptor[];
  enumType: EnumDescriptor[];
  oneofDecl: { name: string }[];
  options?: { mapEntry?: boolean } | null;
}
interface EnumDescriptor {
  name: string;
  value: { name: string; number: number }[];
}
interface ProtoLoaderMethod {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize(value: unknown): Uint8Array;
  requestDeserialize(bytes: Uint8Array): unknown;
  responseSerialize(value: unknown): Uint8Array;
}
interface MethodDescriptor {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestType: { type: { name: string } };
  responseType: { type: { name: string } };
}

const isService = (entry: unknown) => !("format" in (entry as object));

/** One readable line per method, field and enum value, so a mismatch shows what differs. */
function summarize(definition: PackageDefinition): Map<string, string[]> {
  const summary = new Map<string, string[]>();
  for (const [name, entry] of Object.entries(definition)) {
    if (isService(entry)) {
      const methods = Object.entries(entry as unknown as Record<string, MethodDescriptor>);
      summary.set(
        name,
        methods.map(([method, m]) =>
          `rpc ${method} ${m.path} (${
            m.requestStream ? "stream " : ""
          }${m.requestType.type.name})` +
          ` returns (${m.responseStream ? "stream " : ""}${m.responseType.type.name})`
        ).sort(),
      );
    } else if ((entry as { format: string }).format.includes("EnumDescriptorProto")) {
      summary.set(name, describeEnum((entry as { type: EnumDescriptor }).type));
    } else {
      summary.set(name, describeMessage((entry as { type: MessageDescriptor }).type));
    }
  }
  return summary;
}

function describeEnum(type: EnumDescriptor): string[] {
  return type.value.map((v) => `${v.name} = ${v.number}`);
}

function describeMessage(type: MessageDescriptor): string[] {
  const entries = new Map(
    type.nestedType.filter((n) => n.options?.mapEntry).map((n) => [n.name, n]),
  );
  const lines = type.field.map((f) => {
    const entry = f.type === "TYPE_MESSAGE" ? entries.get(f.typeName) : undefined;
    const kind = entry
      ? `map<${fieldType(entry.field[0]!)}, ${fieldType(entry.field[1]!)}>`
      : `${f.label} ${fieldType(f)}`;
    const oneof = type.oneofDecl.length > 0 && !f.proto3Optional && f.oneofIndex !== undefined
      ? ` oneof ${type.oneofDecl[f.oneofIndex]?.name}`
      : "";
    const options = f.options ? ` ${JSON.stringify(f.options)}` : "";
    return `${f.number} ${f.name}: ${kind}${oneof}${options}`;
  });
  for (const nested of type.nestedType.filter((n) => !n.options?.mapEntry)) {
    lines.push(...describeMessage(nested).map((line) => `${nested.name}.${line}`));
  }
  for (const e of type.enumType) lines.push(...describeEnum(e).map((line) => `${e.name}.${line}`));
  return lines.sort();
}

function fieldType(f: FieldDescriptor): string {
  return f.typeName ? `${f.type} ${f.typeName}` : f.type;
}

Deno.test({
  name: haveReference
    ? "proto/api.proto is wire-identical to the CRI v1 reference"
    : `proto/api.proto is wire-identical to the CRI v1 reference (skipped: ${REFERENCE_PATH} is absent; set PVE_CRI_SHARED)`,
  ignore: !haveReference,
  fn() {
    const ours = summarize(loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS));
    const reference = summarize(loadSync(REFERENCE_PATH, PROTO_LOADER_OPTIONS));
    assert.deepEqual([...ours.keys()].sort(), [...reference.keys()].sort());
    for (const [name, lines] of reference) assert.deepEqual(ours.get(name), lines, name);
  },
});

Deno.test({
  name: haveReference
    ? "proto/api.proto has the reference's full descriptors, options included"
    : `proto/api.proto has the reference's full descriptors (skipped: ${REFERENCE_PATH} is absent; set PVE_CRI_SHARED)`,
  ignore: !haveReference,
  fn() {
    const ours = loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);
    const reference = loadSync(REFERENCE_PATH, PROTO_LOADER_OPTIONS);
    for (const [name, entry] of Object.entries(reference)) {
      if (isService(entry)) continue; // methods are compared above; they hold functions
      assert.deepEqual(
        (ours[name] as { type: unknown }).type,
        (entry as { type: unknown }).type,
        name,
      );
    }
  },
});

Deno.test("proto/api.proto serves 43 methods and the test client knows each one", () => {
  const definition = loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);
  const methods = (service: string, streaming: boolean) =>
    Object.entries(definition[service] as unknown as Record<string, MethodDescriptor>)
      .filter(([, m]) => m.responseStream === streaming && !m.requestStream)
      .map(([name]) => name)
      .sort();
  assert.deepEqual(methods("runtime.v1.RuntimeService", false), [...RUNTIME_UNARY_METHODS].sort());
  assert.deepEqual(methods("runtime.v1.RuntimeService", true), [...RUNTIME_STREAM_METHODS].sort());
  assert.deepEqual(methods("runtime.v1.ImageService", false), [...IMAGE_UNARY_METHODS].sort());
  assert.deepEqual(methods("runtime.v1.ImageService", true), [...IMAGE_STREAM_METHODS].sort());
  const total = RUNTIME_UNARY_METHODS.length + RUNTIME_STREAM_METHODS.length +
    IMAGE_UNARY_METHODS.length + IMAGE_STREAM_METHODS.length;
  assert.equal(total, 43);
});

Deno.test("proto/descriptor.json is the parsed form of the .proto files (else: deno task proto)", () => {
  assert.deepEqual(
    JSON.parse(Deno.readTextFileSync(DESCRIPTOR_PATH)),
    JSON.parse(JSON.stringify(currentDescriptor())),
    "proto/descriptor.json is stale: run `deno task proto`",
  );
});

Deno.test("the served methods, from descriptor.json, decode and encode as proto-loader does from the .proto files", () => {
  const parsed = loadSync([CRI_PROTO_PATH, IMAGE_TOOL_PROTO_PATH], PROTO_LOADER_OPTIONS);
  const services = Object.keys(parsed).filter((name) => isService(parsed[name]));
  assert.deepEqual(services.sort(), [
    "pvecri.v1.ImageTool",
    "runtime.v1.ImageService",
    "runtime.v1.RuntimeService",
  ]);
  const samples: Record<string, { request: unknown; response: unknown }> = {
    "/runtime.v1.RuntimeService/Version": {
      request: { version: "v1" },
      response: { version: "0.1.0", runtime_name: "pve-cri", runtime_api_version: "v1" },
    },
    "/runtime.v1.RuntimeService/ListContainers": {
      request: { filter: { state: { state: "CONTAINER_RUNNING" }, label_selector: { a: "b" } } },
      response: {
        containers: [{
          id: "c1",
          pod_sandbox_id: "p1",
          metadata: { name: "app", attempt: 2 },
          image: { image: "busybox" },
          state: "CONTAINER_EXITED",
          created_at: "1700000000123456789",
          labels: { tier: "web" },
        }],
      },
    },
  };
  for (const service of services) {
    const theirs = parsed[service] as unknown as Record<string, ProtoLoaderMethod>;
    const ours = serviceMethods(service);
    assert.deepEqual([...ours.keys()].sort(), Object.keys(theirs).sort(), service);
    for (const [name, method] of Object.entries(theirs)) {
      const served = ours.get(name)!;
      assert.equal(served.path, method.path);
      assert.equal(served.requestStream, method.requestStream, method.path);
      assert.equal(served.responseStream, method.responseStream, method.path);
      const sample = samples[method.path] ?? { request: {}, response: {} };
      const request = method.requestSerialize(sample.request);
      assert.deepEqual(served.decodeRequest(request), method.requestDeserialize(request));
      assert.deepEqual(
        new Uint8Array(served.encodeResponse(sample.response)),
        new Uint8Array(method.responseSerialize(sample.response)),
        method.path,
      );
    }
  }
  // The samples are not trivially empty: a filter survives the round trip.
  const runtime = parsed["runtime.v1.RuntimeService"] as unknown as Record<
    string,
    ProtoLoaderMethod
  >;
  const bytes = runtime.ListContainers!.requestSerialize(
    samples["/runtime.v1.RuntimeService/ListContainers"]!.request,
  );
  const listContainers = serviceMethods("runtime.v1.RuntimeService").get("ListContainers")!;
  assert.equal(listContainers.decodeRequest(bytes).filter.state.state, "CONTAINER_RUNNING");
});
