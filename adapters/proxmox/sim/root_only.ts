/**
 * The CT options only `root@pam` may set, checked as pve-container's
 * `check_ct_modify_config_perm` checks them: by user name, so a root@pam API token is refused
 * too.
 */
import type { Caller } from "./access.ts";
import { PveHttpError } from "./http_error.ts";
import type { ParamValue } from "./schema/validate.ts";

function permissionDenied(reason: string): PveHttpError {
  return new PveHttpError(403, `Permission check failed (${reason})`);
}

/** Whether a mount point value names a host path or device rather than a storage volume. */
export function isHostPathMount(value: string): boolean {
  const volume = value.split(",").find((part) => !part.includes("=") || part.startsWith("volume="));
  return (volume ?? "").replace(/^volume=/, "").startsWith("/");
}

export function checkRootOnlyOptions(
  caller: Caller | undefined,
  params: Readonly<Record<string, ParamValue>>,
  mode: "create" | "update",
): void {
  if (caller?.isRootPam) return;
  for (const [key, value] of Object.entries(params)) {
    if (/^dev\d+$/.test(key)) {
      throw permissionDenied("configuring device passthrough is only allowed for root@pam");
    }
    if (key === "hookscript") {
      throw permissionDenied("changing the hookscript is only allowed for root@pam");
    }
    if (key === "features") {
      const others = String(value).split(",").filter((f) => f !== "" && !f.startsWith("nesting="));
      if (others.length > 0) {
        throw permissionDenied(
          "changing feature flags (except nesting) is only allowed for root@pam",
        );
      }
    }
    if ((key === "rootfs" || /^mp\d+$/.test(key)) && isHostPathMount(String(value))) {
      if (mode === "create") {
        throw new PveHttpError(500, "Only root can pass arbitrary filesystem paths.");
      }
      throw permissionDenied("mount point type bind is only allowed for root@pam");
    }
    if (key === "skiplock") {
      throw new PveHttpError(400, "Parameter verification failed.", {
        skiplock: "Only root may use this option.",
      });
    }
  }
}
