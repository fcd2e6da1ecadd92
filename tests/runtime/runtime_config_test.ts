import assert from "node:assert/strict";
import { DEFAULT_CRI_LIMITS } from "../../adapters/cri/limits.ts";
import { InvalidArgumentError } from "../../lib/errors.ts";
import { parseRuntimeConfig } from "../../runtime/runtime_config.ts";

Deno.test("the config file's cri section sets the client limits; unset ones keep their defaults", () => {
  const none = parseRuntimeConfig("{}", "--config x");
  assert.deepEqual(none.cri, DEFAULT_CRI_LIMITS);
  const some = parseRuntimeConfig(
    JSON.stringify({ cri: { maxConnections: 8, maxResetsPerSecond: 20, idleTimeoutSeconds: 60 } }),
    "--config x",
  );
  assert.deepEqual(some.cri, {
    ...DEFAULT_CRI_LIMITS,
    maxConnections: 8,
    maxResetsPerSecond: 20,
    idleTimeoutMs: 60_000,
  });
});

Deno.test("a bad cri setting is refused, naming the key", () => {
  const cases: [unknown, RegExp][] = [
    [{ maxConnections: 0 }, /--config x: cri\.maxConnections must be a whole number ≥ 1/],
    [{ maxConcurrentStreams: 1.5 }, /cri\.maxConcurrentStreams must be a whole number/],
    [{ maxStreams: 10 }, /cri\.maxStreams is not a setting \(maxConnections, /],
    ["fast", /cri must be an object/],
  ];
  for (const [cri, message] of cases) {
    assert.throws(
      () => parseRuntimeConfig(JSON.stringify({ cri }), "--config x"),
      (error: unknown) => error instanceof InvalidArgumentError && message.test(error.message),
    );
  }
});
