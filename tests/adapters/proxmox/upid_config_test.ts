import assert from "node:assert/strict";
import {
  formatUpid,
  isTaskSuccess,
  parseProxmoxConfig,
  parseUpid,
} from "../../../adapters/proxmox/mod.ts";
import { InvalidArgumentError } from "../../../lib/errors.ts";

Deno.test("parseUpid reads every field of a token task's UPID and formatUpid writes it back", () => {
  const text = "UPID:pve1:0003A1B2:01C2D3E4:6650F3A1:vzcreate:101:root@pam!cri:";
  const upid = parseUpid(text);
  assert.deepEqual(upid, {
    node: "pve1",
    pid: 0x3a1b2,
    pstart: 0x1c2d3e4,
    starttime: 0x6650f3a1,
    type: "vzcreate",
    id: "101",
    user: "root@pam!cri",
  });
  assert.equal(formatUpid(upid!), text);
  assert.equal(
    parseUpid("UPID:pve1:0003A1B2:101C2D3E4:6650F3A1:imgdel::root@pam:")?.pstart,
    0x101c2d3e4,
  );
});

Deno.test("parseUpid refuses what is not a UPID", () => {
  for (
    const text of [
      "",
      "UPID:pve1:1:2:3:x:y:z:",
      "UPID:pve1:0003A1B2:01C2D3E4:6650F3A1:vzcreate:101:root@pam",
      "UPID:-x:0003A1B2:01C2D3E4:6650F3A1:t::u:",
    ]
  ) {
    assert.equal(parseUpid(text), undefined, text);
  }
});

Deno.test("OK and WARNINGS: N are task success; anything else is failure", () => {
  assert.ok(isTaskSuccess("OK"));
  assert.ok(isTaskSuccess("WARNINGS: 3"));
  assert.ok(!isTaskSuccess("WARNINGS: x"));
  assert.ok(!isTaskSuccess("unexpected status"));
  assert.ok(!isTaskSuccess(undefined));
});

Deno.test("The config file takes token or password auth and fills storage and bridge defaults", () => {
  const config = parseProxmoxConfig(JSON.stringify({
    url: "https://pve1.example:8006",
    node: "pve1",
    auth: { tokenId: "root@pam!pve-cri", secret: "s" },
    tls: { fingerprint: "AA:BB" },
  }));
  assert.deepEqual(config.storage, { rootfs: "local-lvm", templates: "local" });
  assert.equal(config.bridge, "vmbr0");
  assert.deepEqual(config.tls, { fingerprint: "AA:BB" });
  assert.throws(
    () =>
      parseProxmoxConfig(
        JSON.stringify({ url: "https://x", node: "pve1", auth: { tokenId: "a" } }),
      ),
    InvalidArgumentError,
  );
  assert.throws(() => parseProxmoxConfig("{"), InvalidArgumentError);
  assert.throws(
    () => parseProxmoxConfig(JSON.stringify({ url: "ftp://x", node: "n", auth: {} })),
    /"url" must be/,
  );
});
