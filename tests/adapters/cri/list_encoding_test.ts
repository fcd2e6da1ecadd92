import assert from "node:assert/strict";
import { loadSync } from "@grpc/proto-loader";
import {
  EncodedListCache,
  encodeListContainersResponse,
  encodeListPodSandboxResponse,
} from "../../../adapters/cri/list_encoding.ts";
import { CRI_PROTO_PATH, PROTO_LOADER_OPTIONS } from "../../../adapters/cri/rpc.ts";

// deno-lint-ignore no-explicit-any
const definition = loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS) as any;
const method = (name: string) => definition["runtime.v1.RuntimeService"][name];

const container = (i: number, extra: Record<string, unknown> = {}) => ({
  id: i.toString(16).padStart(64, "0"),
  pod_sandbox_id: "ab".repeat(32),
  metadata: { name: `c-${i}`, attempt: i % 3 },
  image: { image: "busybox:1.36", annotations: i % 2 ? { "a": "b" } : {} },
  image_ref: `sha256:${"cd".repeat(32)}`,
  image_id: `sha256:${"cd".repeat(32)}`,
  state: ["CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED", "CONTAINER_UNKNOWN"][i % 4],
  created_at: (BigInt(1_795_682_222_271) * 1_000_000n + BigInt(i)).toString(),
  labels: { app: "x", "unicode/ü": "✓ 日本語 😀", empty: "" },
  annotations: { "io.kubernetes.container.hash": "1234" },
  ...extra,
});

Deno.test("ListContainers encoded directly decodes to what protobufjs' encoding decodes to", () => {
  const response = {
    containers: [
      ...Array.from({ length: 50 }, (_, i) => container(i)),
      container(99, {
        metadata: { name: "", attempt: 0 },
        labels: {},
        image_ref: "",
        created_at: "0",
      }),
      container(100, { metadata: { name: "x".repeat(300), attempt: 4_000_000_000 } }),
    ],
  };
  const { responseSerialize, responseDeserialize } = method("ListContainers");
  const fast = encodeListContainersResponse(response);
  const generic = responseSerialize(response);
  assert.deepEqual(responseDeserialize(Buffer.from(fast)), responseDeserialize(generic));
  assert.equal(encodeListContainersResponse({ containers: [] }).length, 0);
});

Deno.test("ListPodSandbox encoded directly decodes to what protobufjs' encoding decodes to", () => {
  const items = Array.from({ length: 30 }, (_, i) => ({
    id: i.toString(16).padStart(64, "0"),
    metadata: { name: `pod-${i}`, uid: `uid-${i}`, namespace: "ns-ü", attempt: i },
    state: i % 2 ? "SANDBOX_NOTREADY" : "SANDBOX_READY",
    created_at: "1795682222271000000",
    labels: { app: `a${i}` },
    annotations: {},
    runtime_handler: i % 3 ? "" : "runc",
  }));
  const { responseSerialize, responseDeserialize } = method("ListPodSandbox");
  const fast = encodeListPodSandboxResponse({ items });
  assert.deepEqual(
    responseDeserialize(Buffer.from(fast)),
    responseDeserialize(responseSerialize({ items })),
  );
});

Deno.test("10,000 containers encode directly and decode back whole", () => {
  const response = { containers: Array.from({ length: 10_000 }, (_, i) => container(i)) };
  const bytes = encodeListContainersResponse(response);
  const back = method("ListContainers").responseDeserialize(Buffer.from(bytes));
  assert.equal(back.containers.length, 10_000);
  assert.equal(back.containers[9999].id, container(9999).id);
});

Deno.test("cached list entries are encoded once per item; a replaced item is encoded again", () => {
  let encodings = 0;
  const cache = new EncodedListCache<ReturnType<typeof container>>("containers", (c) => {
    encodings++;
    return c;
  });
  const decode = (bytes: Uint8Array) =>
    method("ListContainers").responseDeserialize(Buffer.from(bytes)).containers.map((
      c: { id: string; state: string },
    ) => `${c.id.slice(-2)}:${c.state}`);
  const a = container(1);
  const b = container(2);
  const first = cache.encode([a, b]);
  assert.deepEqual(decode(first), ["01:CONTAINER_RUNNING", "02:CONTAINER_EXITED"]);
  assert.equal(encodings, 2);
  assert.equal(cache.encode([a, b]), first, "the same items answer the same bytes");
  assert.deepEqual(decode(cache.encode([b, a])), ["02:CONTAINER_EXITED", "01:CONTAINER_RUNNING"]);
  assert.equal(encodings, 2, "unchanged entries come from the cache, in the order asked");
  // The runtime replaces an item when what it shows changes.
  const stopped = { ...a, state: "CONTAINER_EXITED" };
  assert.deepEqual(decode(cache.encode([stopped, b])), [
    "01:CONTAINER_EXITED",
    "02:CONTAINER_EXITED",
  ]);
  assert.equal(encodings, 3, "the replaced item is encoded again");
  assert.deepEqual(decode(cache.encode([b])), ["02:CONTAINER_EXITED"]);
  assert.deepEqual(decode(cache.encode([])), []);
});
