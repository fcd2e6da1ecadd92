import assert from "node:assert/strict";
import { perlPatternToRegExp } from "../../../adapters/proxmox/sim/schema/perl_regex.ts";
import { netFormat, rootfsFormat } from "../../../adapters/proxmox/sim/schema/lxc_options.ts";
import {
  parsePropertyString,
  validateParams,
} from "../../../adapters/proxmox/sim/schema/validate.ts";
import { formats } from "../../../adapters/proxmox/sim/schema/formats.ts";

Deno.test("Perl patterns translate: (?^:…) groups, (?^i:…) ignores case, matches are whole", () => {
  const mountOptions = perlPatternToRegExp(
    "(?^:(?^:(discard|lazytime|noatime|nodev|noexec|nosuid))(;(?^:(discard|lazytime|noatime|nodev|noexec|nosuid)))*)",
  );
  assert.ok(mountOptions.test("noatime;nodev"));
  assert.ok(!mountOptions.test("noatime;rw"));
  assert.ok(!mountOptions.test("xnoatime"), "anchored like Perl validation");
  const caseless = perlPatternToRegExp("(?^i:[a-z]+)");
  assert.ok(caseless.test("AbC"));
  const env = perlPatternToRegExp(
    "(?^:(?:\\w+=[^\\x00-\\x08\\x10-\\x1F\\x7F]*)(?:\\0\\w+=[^\\x00-\\x08\\x10-\\x1F\\x7F]*)*)",
  );
  assert.ok(env.test("A=1\0B=two words"));
  assert.ok(!env.test("A=1\0=2"));
});

Deno.test("Property strings take a bare default key and refuse unknown or duplicate keys", () => {
  assert.deepEqual(parsePropertyString(rootfsFormat, "local-lvm:8,size=8G,ro=1"), {
    values: { volume: "local-lvm:8", size: "8G", ro: 1 },
  });
  assert.deepEqual(parsePropertyString(netFormat, "name=eth0,color=red"), {
    error: "invalid key in comma-separated list property: color",
  });
  assert.deepEqual(parsePropertyString(netFormat, "name=eth0,name=eth1"), {
    error: "duplicate key in comma-separated list property: name",
  });
  assert.deepEqual(parsePropertyString(netFormat, "bridge=vmbr0,tag=5000"), {
    error:
      "format error\ntag: value must have a maximum value of 4094\nname: property is missing and it is not optional",
  });
});

Deno.test("Indexed keys stop at PVE's maxima: net31 exists, net32 does not", () => {
  const table = { "net[n]": { type: "string", optional: true, format: netFormat } } as const;
  assert.deepEqual(validateParams(table, { net31: "name=eth31" }, { json: false }).errors, {});
  assert.deepEqual(validateParams(table, { net32: "name=eth32" }, { json: false }).errors, {
    net32: "property is not defined in schema and the schema does not allow additional properties",
  });
});

Deno.test("Named formats check what PVE checks", () => {
  const refused = (format: string, value: string) => formats[format]!(value) !== undefined;
  assert.ok(!refused("pve-node", "pve1") && refused("pve-node", "-pve"));
  assert.ok(
    !refused("mac-addr", "BC:24:11:00:00:01") && refused("mac-addr", "01:24:11:00:00:01"),
    "unicast only",
  );
  assert.ok(!refused("pve-ipv4-config", "10.0.0.2/24") && !refused("pve-ipv4-config", "dhcp"));
  assert.ok(refused("pve-ipv4-config", "10.0.0.2/33"));
  assert.ok(!refused("pve-tag-list", "pve-cri;pod.x+1") && refused("pve-tag-list", "-x"));
  assert.ok(!refused("pve-storage-id", "local-lvm") && refused("pve-storage-id", "1local"));
  assert.ok(
    !refused("pve-configid-list", "swap,description") && refused("pve-configid-list", "swap,1x"),
  );
  assert.ok(!refused("disk-size", "8G") && refused("disk-size", "8GB"));
  assert.ok(refused("pve-lxc-mp-string", "/a/../b"));
});
