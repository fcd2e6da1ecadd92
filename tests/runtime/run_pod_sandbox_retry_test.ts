import assert from "node:assert/strict";
import { FakeCni } from "../../adapters/cni/fake_cni.ts";
import type { CniRequest, CniResult } from "../../adapters/cni/mod.ts";
import { silentLogger } from "../../lib/log.ts";
import { openRuntime } from "../../runtime/open_runtime.ts";
import { sandboxSpec } from "../_support/specs.ts";
import { tempDir } from "../_support/temp_dir.ts";

/** A CNI whose ADD waits until released: a RunPodSandbox that outlives its caller. */
class SlowCni extends FakeCni {
  release!: () => void;
  readonly gate = new Promise<void>((resolve) => (this.release = resolve));
  override async add(request: CniRequest): Promise<CniResult> {
    await this.gate;
    return await super.add(request);
  }
}

Deno.test("a RunPodSandbox retried after the caller gave up returns the first sandbox", async () => {
  using dir = tempDir();
  const cni = new SlowCni();
  const rt = await openRuntime({
    stateDir: dir.path,
    backend: "memory",
    log: silentLogger,
    version: "t",
    cni,
  });
  try {
    const first = new AbortController();
    const pending = rt.runtime.runPodSandbox(sandboxSpec("slow"), {
      meta: {},
      signal: first.signal,
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    first.abort(new Error("deadline exceeded"));
    await assert.rejects(pending, /deadline exceeded/);

    const retry = rt.runtime.runPodSandbox(sandboxSpec("slow"), { meta: {} });
    cni.release();
    const sandbox = await retry;
    assert.equal(sandbox.state, "SANDBOX_READY");
    assert.equal(rt.runtime.sandboxes().length, 1, "no second sandbox for the same pod");

    // Delivered now: a third call is a real duplicate.
    await assert.rejects(
      rt.runtime.runPodSandbox(sandboxSpec("slow"), { meta: {} }),
      (error: unknown) => {
        assert.equal((error as { code: string }).code, "AlreadyExists");
        assert.match((error as Error).message, new RegExp(sandbox.id));
        return true;
      },
    );
  } finally {
    cni.release();
    await rt.close();
  }
});
