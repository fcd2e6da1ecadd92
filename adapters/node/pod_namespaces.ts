/**
 * A pod's net, ipc and uts namespaces, pinned in files as CRI-O's pinns pins them (`unshare
 * --net=FILE …`), so they outlive every process and each CT joins them by path. The pod's
 * hostname is set in the uts namespace and loopback is brought up in the net namespace;
 * sysctls are written in the namespaces they belong to.
 */
import { join } from "node:path";
import { InvalidArgumentError } from "../../lib/errors.ts";
import type { PodSetup } from "./mod.ts";
import { runTool } from "./run_tool.ts";

const kinds = ["net", "ipc", "uts"] as const;

/** Sysctls that are namespaced: the IPC ones and the network ones (as runc allows). */
function sysctlNamespace(name: string): "ipc" | "net" | undefined {
  if (/^(kernel\.(msg|sem|shm)|fs\.mqueue\.)/.test(name)) return "ipc";
  if (name.startsWith("net.")) return "net";
  return undefined;
}

export function checkSysctls(sysctls: Record<string, string>, pod: PodSetup): void {
  for (const [name, value] of Object.entries(sysctls)) {
    const ns = sysctlNamespace(name);
    if (ns === undefined || /[\s/]|\.\./.test(name) || /[\n\0]/.test(value)) {
      throw new InvalidArgumentError(
        `linux.sysctls: "${name}" is not a namespaced sysctl pve-cri can set in a pod`,
        { details: { field: "linux.sysctls", sysctl: name } },
      );
    }
    if ((ns === "net" && pod.hostNetwork) || (ns === "ipc" && pod.hostIpc)) {
      throw new InvalidArgumentError(
        `linux.sysctls: "${name}" would change the node's own ${ns} namespace`,
        { details: { field: "linux.sysctls", sysctl: name } },
      );
    }
  }
}

/**
 * Pins the pod's namespaces; returns kind → file. Idempotent. Those the pod shares with the
 * node (hostNetwork: net and uts, as the kubelet means it; hostIPC: ipc) are the node's own,
 * pinned from pve-cri's process, so every CT joins its pod the same way.
 */
export async function pinPodNamespaces(
  dir: string,
  pod: PodSetup,
): Promise<Record<string, string>> {
  checkSysctls(pod.sysctls, pod);
  const host = (kind: string) =>
    ((kind === "net" || kind === "uts") && pod.hostNetwork) || (kind === "ipc" && pod.hostIpc);
  const paths: Record<string, string> = {};
  for (const kind of kinds) paths[kind] = join(dir, kind);
  // A pin interrupted by a crash may have left some: start over.
  await unpinPodNamespaces(dir, paths);
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const path of Object.values(paths)) {
    Deno.writeFileSync(path, new Uint8Array(), { mode: 0o600 });
  }
  const own = kinds.filter((kind) => !host(kind));
  if (own.length > 0) {
    // hostname runs inside the new namespaces; with the node's uts it is not run at all.
    await runTool("unshare", [
      ...own.map((kind) => `--${kind}=${paths[kind]}`),
      "--",
      ...(host("uts") ? ["true"] : ["hostname", pod.hostname]),
    ]);
  }
  for (const kind of kinds.filter(host)) {
    await runTool("mount", ["--bind", `/proc/${Deno.pid}/ns/${kind}`, paths[kind]!]);
  }
  if (!host("net")) {
    await runTool("nsenter", [`--net=${paths.net}`, "--", "ip", "link", "set", "lo", "up"]);
  }
  for (const [name, value] of Object.entries(pod.sysctls)) {
    const ns = sysctlNamespace(name)!;
    await runTool("nsenter", [
      `--${ns}=${paths[ns]}`,
      "--",
      "sysctl",
      "-q",
      "-w",
      `${name}=${value}`,
    ]);
  }
  return paths;
}

/** Unmounts and removes the pinned files; what is already gone is fine. */
export async function unpinPodNamespaces(
  dir: string,
  paths: Record<string, string> | null,
): Promise<void> {
  // Unknown paths (a pod the log lost): whatever is pinned in the directory.
  const pinned = Object.values(paths ?? pinnedIn(dir));
  const mounted = mountPoints();
  const toUnmount = pinned.filter((path) => mounted.has(path));
  // Detached, as CRI-O's namespace manager does: a CT still stopping may hold it a moment.
  if (toUnmount.length > 0) await runTool("umount", ["-l", ...toUnmount]);
  for (const path of pinned) {
    try {
      Deno.removeSync(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  try {
    Deno.removeSync(dir);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

function pinnedIn(dir: string): Record<string, string> {
  try {
    return Object.fromEntries([...Deno.readDirSync(dir)].map((e) => [e.name, join(dir, e.name)]));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {};
    throw error;
  }
}

/**
 * pve-cri's mount points (a pinned namespace is a bind mount of an nsfs inode), unescaped:
 * mountinfo writes space, tab, newline and backslash in octal.
 */
export function mountPoints(): Set<string> {
  return new Set(
    Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
      .map((line) => line.split(" ")[4])
      .filter((point) => point !== undefined)
      .map((point) =>
        point.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8)))
      ),
  );
}
