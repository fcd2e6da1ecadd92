import assert from "node:assert/strict";
import {
  catalog,
  eventSpec,
  type EventType,
  redactPayload,
  streamKinds,
  upcastEvent,
} from "../../machines/events.ts";
import {
  containerEffectNames,
  imageEffectNames,
  sandboxEffectNames,
} from "../../machines/effects.ts";
import { xstateMachines } from "../../machines/fold.ts";

Deno.test("the README's event table is the catalogue", () => {
  const readme = Deno.readTextFileSync(new URL("../../README.md", import.meta.url));
  const block = readme.split("<!-- events:start -->")[1]!.split("<!-- events:end -->")[0]!;
  const rows = block.trim().split("\n").slice(2).map((line) =>
    line.split("|").slice(1, -1).map((cell) => cell.trim())
  );
  const expected = (Object.keys(catalog) as EventType[]).map((type) => {
    const spec = eventSpec(type);
    return [catalog[type].kind, type, String(spec.version), spec.doc];
  });
  assert.deepEqual(rows, expected);
});

Deno.test("every event the machines accept is in the catalogue, and every catalogued event is used", () => {
  for (const kind of streamKinds) {
    const machine = xstateMachines[kind];
    const accepted = new Set<string>();
    for (const node of Object.values(machine.root.states)) {
      for (const type of Object.keys((node as { on: Record<string, unknown> }).on)) {
        accepted.add(type);
      }
    }
    const catalogued = (Object.keys(catalog) as EventType[]).filter((t) =>
      catalog[t].kind === kind
    );
    assert.deepEqual([...accepted].sort(), [...catalogued].sort(), kind);
  }
});

Deno.test("the effect names the registry binds are exactly the ones the machines use", () => {
  for (
    const [kind, names] of [
      ["sandbox", sandboxEffectNames],
      ["container", containerEffectNames],
      ["image", imageEffectNames],
    ] as const
  ) {
    const used = new Set<string>();
    const collect = (actions: readonly unknown[]) => {
      for (const a of actions) {
        const type = typeof a === "string" ? a : (a as { type: string }).type;
        if (type !== "record") used.add(type);
      }
    };
    for (const node of Object.values(xstateMachines[kind].root.states)) {
      const n = node as { entry: unknown[]; on: Record<string, { actions: unknown[] }[]> };
      collect(n.entry);
      for (const transitions of Object.values(n.on)) {
        for (const t of transitions) collect(t.actions);
      }
    }
    assert.deepEqual([...used].sort(), [...names].sort(), kind);
  }
});

Deno.test("SandboxRequested v1 is upcast to v2: nested metadata, a list of networks", () => {
  const v1 = {
    name: "web",
    uid: "u1",
    namespace: "prod",
    attempt: 2,
    network: "pods",
    config: { a: 1 },
  };
  const { typeVersion, data } = upcastEvent({ type: "SandboxRequested", typeVersion: 1, data: v1 });
  assert.equal(typeVersion, 2);
  assert.deepEqual(data, {
    metadata: { name: "web", uid: "u1", namespace: "prod", attempt: 2 },
    networks: [{ name: "pods", ifname: "eth0" }],
    runtimeHandler: "",
    config: { a: 1 },
  });
  assert.equal(catalog.SandboxRequested.shape.check(data, "data"), undefined);
});

Deno.test("env values never survive redaction, even in a malformed payload", () => {
  const shown = redactPayload("ContainerRequested", {
    sandboxId: "s",
    metadata: { name: "c", attempt: 0 },
    image: "i",
    envs: [{ key: "PASSWORD", value: "hunter2" }],
    hooks: [],
    config: {},
  });
  assert.doesNotMatch(JSON.stringify(shown), /hunter2/);
  const malformed = redactPayload("ContainerRequested", { envs: [{ key: "P", value: "hunter2" }] });
  assert.doesNotMatch(JSON.stringify(malformed), /hunter2/);
});
