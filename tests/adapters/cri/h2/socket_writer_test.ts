import assert from "node:assert/strict";
import { SocketWriter } from "../../../../adapters/cri/h2/socket_writer.ts";
import { concatBytes } from "../../../../lib/bytes.ts";

Deno.test("the socket writer sends every byte in order, joining chunks, through partial and slow writes", async () => {
  const received: Uint8Array[] = [];
  // Like a socket that takes part of what it is given, and reads it only when the write ends.
  const socket = {
    async write(bytes: Uint8Array): Promise<number> {
      await new Promise((resolve) => setTimeout(resolve, 1));
      const taken = Math.min(bytes.length, 100_000);
      received.push(bytes.slice(0, taken));
      return taken;
    },
  };
  const writer = new SocketWriter(socket, {
    onDrain: () => {},
    onError: (e) => assert.fail(String(e)),
  });
  const sent: Uint8Array[] = [];
  for (let round = 0; round < 3; round++) {
    // Small chunks (joined, mostly into the reused buffer), then one larger than a write.
    for (let i = 0; i < 80; i++) sent.push(new Uint8Array(10_000).fill((round * 80 + i) % 251));
    sent.push(new Uint8Array(300_000).fill(7 + round));
    for (const chunk of sent.slice(-81)) writer.push(chunk);
    await new Promise((resolve) => setTimeout(resolve, 0)); // later pushes land mid-write
  }
  await writer.drained();
  assert.equal(writer.backlog, 0);
  assert.deepEqual(concatBytes(received), concatBytes(sent));
});
