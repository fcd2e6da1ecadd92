/**
 * Options Proxmox lets only `root@pam` set (pve-container `check_ct_modify_config_perm`):
 * device passthrough, hookscripts, features other than nesting, bind and device mounts. The
 * check is by user name, so an API token (even root@pam's) can never set them. The client
 * says so up front instead of leaving it to a 403 deep in a create.
 */
import type { WireParams } from "./params.ts";

/** Why these parameters need a root@pam ticket, or undefined. */
export function rootOnlyReason(params: WireParams): string | undefined {
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    const text = String(value);
    if (/^dev\d+$/.test(key)) return `device passthrough (${key})`;
    if (key === "hookscript") return "a hookscript";
    if (key === "skiplock" && value !== false && value !== 0) return "skiplock";
    if (key === "features") {
      const other = text.split(",").map((f) => f.split("=")[0]).find((f) => f && f !== "nesting");
      if (other !== undefined) return `the '${other}' feature`;
    }
    if (key === "rootfs" || /^mp\d+$/.test(key)) {
      const volume = text.split(",").find((p) => !p.includes("=") || p.startsWith("volume="));
      if (volume?.replace(/^volume=/, "").startsWith("/")) return `a bind mount (${key})`;
    }
  }
  return undefined;
}
