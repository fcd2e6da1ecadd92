import assert from "node:assert/strict";
import { canonicalReference, parseImageReference } from "../../../adapters/oci/reference.ts";

Deno.test("short image names expand as containerd expands them", () => {
  const cases: [string, string][] = [
    ["busybox", "docker.io/library/busybox:latest"],
    ["busybox:1.36", "docker.io/library/busybox:1.36"],
    ["bitnami/redis", "docker.io/bitnami/redis:latest"],
    ["registry.local:5000/team/app:v2", "registry.local:5000/team/app:v2"],
    ["localhost/app", "localhost/app:latest"],
    [`quay.io/a/b@sha256:${"a".repeat(64)}`, `quay.io/a/b@sha256:${"a".repeat(64)}`],
  ];
  for (const [input, canonical] of cases) {
    assert.equal(canonicalReference(parseImageReference(input)), canonical, input);
  }
});

Deno.test("malformed references are InvalidArgument naming the field", () => {
  for (const bad of ["", "UPPER/case", "bad::ref", "a:b:c", "x@sha256:short", "-leading", "a//b"]) {
    assert.throws(() => parseImageReference(bad), (error: unknown) => {
      assert.equal((error as { code: string }).code, "InvalidArgument", bad);
      assert.match((error as Error).message, /^image\.image: /);
      return true;
    });
  }
});
