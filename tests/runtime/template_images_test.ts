import assert from "node:assert/strict";
import { TemplateImages } from "../../runtime/template_images.ts";
import {
  canonicalReference,
  parseImageReference,
  templateFileName,
} from "../../runtime/image_reference.ts";
import { settle, testEnv } from "../adapters/proxmox/_support.ts";

Deno.test("an image once found is found from the last listing while a new one is read; a miss reads again", async () => {
  await using env = await testEnv();
  const api = env.client();
  // Every listing is old at once: each lookup starts a new read.
  const images = new TemplateImages({ api, storage: "local", cacheMs: 0 });
  const busybox = await images.pull("busybox:1.36");
  // The storage stops answering: a CreateContainer still finds its image, and the failed
  // background read is neither thrown nor left unhandled.
  const fault = env.sim.faults.add({
    method: "GET",
    path: "/nodes/*/storage/*/content",
    status: 500,
  });
  assert.deepEqual(await images.find("busybox:1.36"), busybox);
  assert.deepEqual(await images.find(busybox.id), busybox);
  env.sim.faults.remove(fault);
  // Another client pulls an image: the old listing misses it, so the lookup reads again.
  const alpine = canonicalReference(parseImageReference("alpine:3.20"));
  await settle(
    api,
    (await api.pullOciImage({
      storage: "local",
      reference: alpine,
      filename: templateFileName(alpine),
    }))
      .upid,
  );
  assert.equal((await images.find("alpine:3.20"))?.repoTags[0], "docker.io/library/alpine:3.20");
  assert.equal(await images.find("nginx:1.27"), undefined);
});
