/** A store and registry over stub effects, on a temp database: the kernel without adapters. */
import { upcastEvent } from "../../machines/events.ts";
import { projectors } from "../../machines/projections.ts";
import { Registry } from "../../machines/registry.ts";
import { EventStore } from "../../store/mod.ts";
import { Random } from "./random.ts";
import { stubEffects, type StubOptions, StubWorld } from "./stub_effects.ts";

export interface KernelRuntime extends Disposable {
  store: EventStore;
  registry: Registry;
  world: StubWorld;
}

export function openKernel(
  path: string,
  options: Partial<StubOptions> & { world?: StubWorld } = {},
): KernelRuntime {
  const world = options.world ?? new StubWorld();
  const store = EventStore.open({ path, upcast: upcastEvent, projectors });
  const registry = Registry.open({
    store,
    effects: stubEffects(world, { random: new Random(7), ...options }),
  });
  return {
    store,
    registry,
    world,
    [Symbol.dispose]() {
      registry.close();
      store.close();
    },
  };
}

export const testPod = (name: string, networks = 1) => ({
  id: `${name}-id`.padEnd(64, "0"),
  metadata: { name, uid: `${name}-uid`, namespace: "default", attempt: 0 },
  networks: Array.from({ length: networks }, (_, i) => ({ name: `net${i}`, ifname: `eth${i}` })),
  runtimeHandler: "",
  config: {},
});

export const testContainer = (sandboxId: string, name: string) => ({
  id: `${name}-cid`.padEnd(64, "0"),
  sandboxId,
  metadata: { name, attempt: 0 },
  image: "busybox:latest",
  envs: [{ key: "TOKEN", value: "s3cret-value" }],
  hooks: [],
  config: {},
});
