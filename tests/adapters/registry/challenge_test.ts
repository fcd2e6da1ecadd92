import assert from "node:assert/strict";
import { parseChallenges } from "../../../adapters/registry/challenge.ts";

Deno.test("WWW-Authenticate challenges are read as registries send them", () => {
  assert.deepEqual(
    parseChallenges(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
    ),
    [{
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/busybox:pull",
      },
    }],
  );
  assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [
    { scheme: "basic", params: { realm: "Registry Realm" } },
  ]);
  assert.deepEqual(
    parseChallenges('Basic realm="a, b", Bearer realm="https://x/token", error="invalid_token"'),
    [
      { scheme: "basic", params: { realm: "a, b" } },
      { scheme: "bearer", params: { realm: "https://x/token", error: "invalid_token" } },
    ],
  );
  assert.deepEqual(parseChallenges("Negotiate, Basic realm=plain"), [
    { scheme: "negotiate", params: {} },
    { scheme: "basic", params: { realm: "plain" } },
  ]);
  assert.deepEqual(parseChallenges('Bearer realm="quoted \\"inner\\" text"'), [
    { scheme: "bearer", params: { realm: 'quoted "inner" text' } },
  ]);
  assert.deepEqual(parseChallenges(null), []);
});
