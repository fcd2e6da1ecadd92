import assert from "node:assert/strict";
import { commandSocket } from "../../../adapters/lxc/lxc_tools.ts";

// Names read from /proc/net/unix beside LXC 5.0.2's running containers on this machine.
Deno.test("a container's command socket is named as LXC names it, hashed once the name is too long", () => {
  const lxcpath = (n: number) => `/tmp/explxc/${"l".repeat(n)}`;
  assert.equal(
    commandSocket(lxcpath(78), "999002"),
    `\0${lxcpath(78)}/999002/command`,
    "105 bytes: as it is",
  );
  assert.equal(commandSocket(lxcpath(79), "999002"), "\0lxc/8ccf116e9292a025/command", "106");
  assert.equal(commandSocket(lxcpath(80), "999002"), "\0lxc/f84f3398a9829e0b/command");
  assert.equal(commandSocket(lxcpath(90), "999002"), "\0lxc/c7674b4218021beb/command");
});
