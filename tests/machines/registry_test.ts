import assert from "node:assert/strict";
import {
  createContainer,
  removeContainer,
  removePodSandbox,
  runPodSandbox,
  startContainer,
  stopContainer,
  stopPodSandbox,
} from "../../machines/commands.ts";
import { foldStream } from "../../machines/fold.ts";
import { Registry } from "../../machines/registry.ts";
import { ProjectionKeyConflictError } from "../../store/mod.ts";
import { openKernel, testContainer, testPod } from "../_support/runtime.ts";
import { Random } from "../_support/random.ts";
import { stubEffects, type StubOptions, StubWorld } from "../_support/stub_effects.ts";
import { tempDir } from "../_support/temp_dir.ts";

function openRuntime(path: string, world: StubWorld, options: Partial<StubOptions> = {}) {
  return openKernel(path, { world, ...options });
}

const pod = testPod;
const ctr = testContainer;

Deno.test("a pod and its container go through the whole lifecycle and leave nothing behind", async () => {
  using dir = tempDir();
  const world = new StubWorld();
  using rt = openRuntime(`${dir.path}/events.db`, world);
  const p = pod("web", 2);
  const sandbox = await runPodSandbox(rt.registry, p, { meta: { method: "RunPodSandbox" } });
  assert.equal(sandbox.value, "ready");
  assert.equal(sandbox.context.attached.length, 2);
  assert.equal(world.attachments.size, 2);

  const c = ctr(p.id, "app");
  assert.equal((await createContainer(rt.registry, c)).value, "created");
  assert.equal((await startContainer(rt.registry, c.id)).value, "running");
  const stopped = await stopContainer(rt.registry, c.id, 5);
  assert.equal(stopped!.value, "exited");
  assert.equal(stopped!.context.exitCode, 143);
  assert.equal((await removeContainer(rt.registry, c.id))!.value, "removed");
  assert.equal((await stopPodSandbox(rt.registry, p.id))!.value, "notready");
  assert.equal((await removePodSandbox(rt.registry, p.id))!.value, "removed");
  await rt.registry.whenIdle();
  assert.ok(world.isEmpty(), "namespaces, attachments and CTs are all gone");
  assert.equal(rt.registry.actors().length, 0);

  const history = rt.store.readStream(p.id).map((e) => e.type);
  assert.deepEqual(history, [
    "SandboxRequested",
    "NamespacesPinned",
    "CniAddStarted",
    "CniAdded",
    "CniAddStarted",
    "CniAdded",
    "ContainerAdmitted",
    "SandboxStopRequested",
    "ContainersStopped",
    "CniDeleted",
    "CniDeleted",
    "NamespacesUnpinned",
    "SandboxRemoveRequested",
    "ContainersRemoved",
  ]);
  assert.equal(rt.store.readStream(p.id)[0]!.meta.method, "RunPodSandbox");
  assert.equal(rt.store.streamInfo(p.id)!.closed, true);
});

Deno.test("an image found before the request is recorded with it, and no state runs twice", async () => {
  using dir = tempDir();
  const world = new StubWorld();
  using rt = openRuntime(`${dir.path}/events.db`, world);
  const p = pod("web", 1);
  await runPodSandbox(rt.registry, p);
  const image = { imageId: `sha256:${"cd".repeat(32)}`, template: "local:vztmpl/given.tar" };
  const c = { ...ctr(p.id, "app"), resolvedImage: image };
  const created = await createContainer(rt.registry, c);
  assert.equal(created.value, "created");
  assert.equal(created.context.imageId, image.imageId);
  assert.equal(created.context.template, image.template);
  // The decision went through resolvingImage: its effect's work was already done.
  assert.equal(world.imageLookups, 0);
  const history = rt.store.readStream(c.id);
  assert.deepEqual(history.slice(0, 3).map((e) => e.type), [
    "ContainerRequested",
    "ImageResolved",
    "VmidAllocated",
  ]);
  assert.equal(history[1]!.time, history[0]!.time, "one decision, one commit time");

  // Without a resolved image the effect finds it, as for a stream written before.
  const other = ctr(p.id, "other");
  assert.equal((await createContainer(rt.registry, other)).value, "created");
  assert.equal(world.imageLookups, 1);
});

Deno.test("RunPodSandbox with the same metadata is refused naming the existing sandbox", async () => {
  using dir = tempDir();
  using rt = openRuntime(`${dir.path}/events.db`, new StubWorld());
  const p = pod("dup");
  await runPodSandbox(rt.registry, p);
  await assert.rejects(
    runPodSandbox(rt.registry, { ...p, id: "f".repeat(64) }),
    (error: unknown) => {
      assert.ok(error instanceof ProjectionKeyConflictError);
      assert.equal(error.holder, p.id);
      return true;
    },
  );
  assert.equal(rt.registry.get("f".repeat(64)), undefined);
  // Once removed, the name is free again.
  await removePodSandbox(rt.registry, p.id);
  assert.equal((await runPodSandbox(rt.registry, { ...p, id: "f".repeat(64) })).value, "ready");
});

Deno.test("CreateContainer racing StopPodSandbox: one winner, the loser gets FailedPrecondition", async () => {
  const outcomes = new Set<string>();
  for (let round = 0; round < 20; round++) {
    using dir = tempDir();
    const world = new StubWorld();
    using rt = openRuntime(`${dir.path}/events.db`, world, { random: new Random(round) });
    const p = pod(`race${round}`);
    await runPodSandbox(rt.registry, p);
    const c = ctr(p.id, "late");
    // Either may reach the sandbox first.
    const create = () => createContainer(rt.registry, c);
    const stop = () => stopPodSandbox(rt.registry, p.id);
    const [created, stopped] = round % 2 === 0
      ? await Promise.allSettled([create(), stop()])
      : await Promise.allSettled([stop(), create()]).then(([s, c]) => [c, s] as const);
    outcomes.add(created.status);
    assert.equal(stopped.status, "fulfilled");
    if (created.status === "rejected") {
      assert.equal((created.reason as { code: string }).code, "FailedPrecondition");
      assert.equal(rt.store.readStream(c.id).length, 0, "the loser left no stream");
    } else {
      // Admitted first: the sandbox stop stopped it too.
      const sandbox = rt.registry.get(p.id)!;
      assert.deepEqual(
        (sandbox.state.context as { containers: { id: string }[] }).containers.map((x) => x.id),
        [c.id],
      );
    }
    await removePodSandbox(rt.registry, p.id);
    await rt.registry.whenIdle();
    assert.ok(world.isEmpty());
  }
  assert.deepEqual([...outcomes].sort(), ["fulfilled", "rejected"], "both orders were exercised");
});

Deno.test("commands on one stream run one at a time, in the order they came", async () => {
  using dir = tempDir();
  using rt = openRuntime(`${dir.path}/events.db`, new StubWorld(), { maxDelayMs: 3 });
  const p = pod("serial");
  await runPodSandbox(rt.registry, p);
  const c = ctr(p.id, "app");
  await createContainer(rt.registry, c);
  // Fired together; each must see the state the previous one left.
  const results = await Promise.allSettled([
    startContainer(rt.registry, c.id),
    stopContainer(rt.registry, c.id, 1),
    startContainer(rt.registry, c.id),
    removeContainer(rt.registry, c.id),
    stopContainer(rt.registry, c.id, 1),
  ]);
  assert.equal(results[0]!.status, "fulfilled");
  assert.equal((results[1] as PromiseFulfilledResult<{ value: string }>).value.value, "exited");
  assert.equal(results[2]!.status, "rejected", "a second start meets an exited container");
  assert.equal((results[3] as PromiseFulfilledResult<{ value: string }>).value.value, "removed");
  assert.equal((results[4] as PromiseFulfilledResult<unknown>).value, undefined, "already gone");
  const types = rt.store.readStream(c.id).map((e) => e.type);
  assert.deepEqual(types.filter((t) => t.endsWith("Requested")), [
    "ContainerRequested",
    "ContainerStartRequested",
    "ContainerStopRequested",
    "ContainerRemoveRequested",
  ]);
});

Deno.test("a container that ignores SIGTERM is killed when its grace period ends", async () => {
  using dir = tempDir();
  using rt = openRuntime(`${dir.path}/events.db`, new StubWorld(), {
    ignoreSigterm: 1,
    msPerSecond: 5,
  });
  const p = pod("stubborn");
  await runPodSandbox(rt.registry, p);
  const c = ctr(p.id, "app");
  await createContainer(rt.registry, c);
  await startContainer(rt.registry, c.id);
  const stopped = await stopContainer(rt.registry, c.id, 2);
  assert.equal(stopped!.context.exitCode, 137);
  const types = rt.store.readStream(c.id).map((e) => e.type);
  assert.deepEqual(types.slice(-3), [
    "ContainerStopRequested",
    "StopTimeoutElapsed",
    "ContainerExited",
  ]);
  await removePodSandbox(rt.registry, p.id);
});

Deno.test("a failed CNI ADD rolls back: DEL, unpin, and the sandbox fails without leaks", async () => {
  using dir = tempDir();
  const world = new StubWorld();
  using rt = openRuntime(`${dir.path}/events.db`, world, { random: new Random(3) });
  // Fail exactly the second network's ADD.
  const p = pod("flaky", 2);
  const failing = stubEffects(world, { random: new Random(1) });
  const addNetwork = failing.sandbox.addNetwork;
  let adds = 0;
  failing.sandbox.addNetwork = async (input) => {
    if (++adds === 2) {
      await input.emit({ type: "CniAddStarted", data: { name: "net1", ifname: "eth1" } });
      world.attachments.add(`${input.stream}/net1/eth1`); // the plugin left the interface
      throw new Error("plugin exploded");
    }
    return await addNetwork(input);
  };
  rt.registry.close();
  const registry = Registry.open({ store: rt.store, effects: failing });
  const state = await runPodSandbox(registry, p);
  assert.equal(state.value, "failed");
  assert.equal(state.context.lastError?.event, "CniAddFailed");
  assert.match(state.context.lastError!.error, /plugin exploded/);
  await registry.whenIdle();
  assert.ok(world.isEmpty(), `left behind: ${[...world.attachments, ...world.namespaces]}`);
  const fold = foldStream("sandbox", p.id, rt.store.readStream(p.id), { checkPayload: true });
  assert.deepEqual(fold.problems, []);
  assert.deepEqual(
    rt.store.readStream(p.id).map((e) => e.type).slice(-4),
    ["CniAddFailed", "CniDeleted", "CniDeleted", "NamespacesUnpinned"],
  );
  registry.close();
});

Deno.test("a stream stuck in an effect does not hold up commands on other streams", async () => {
  using dir = tempDir();
  const world = new StubWorld();
  const base = stubEffects(world, { random: new Random(5) });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const slow = testPod("slow");
  const effects = {
    ...base,
    sandbox: {
      ...base.sandbox,
      pinNamespaces: async (input: Parameters<typeof base.sandbox.pinNamespaces>[0]) => {
        if (input.stream === slow.id) await gate;
        return await base.sandbox.pinNamespaces(input);
      },
    },
  };
  using rt = openKernel(`${dir.path}/events.db`, { world });
  rt.registry.close();
  const registry = Registry.open({ store: rt.store, effects });
  const stuck = runPodSandbox(registry, slow);
  const fast = testPod("fast");
  assert.equal((await runPodSandbox(registry, fast)).value, "ready");
  assert.equal(registry.get(slow.id)!.value, "pinning", "the slow one is still working");
  release();
  assert.equal((await stuck).value, "ready");
  registry.close();
});
