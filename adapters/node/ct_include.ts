/**
 * Joining a CT to its pod. PVE refuses `lxc.namespace.*` keys in a CT's config and its API
 * cannot set raw keys at all, so (DESIGN §2) pve-cri writes an include file of its own —
 * namespaces to share, the idle init, pod files and the CRI's mounts as `lxc.mount.entry`
 * lines — and adds one `lxc.include: FILE` line to `/etc/pve/lxc/VMID.conf`, as root on the
 * node may.
 */
import { dirname, join } from "node:path";
import { InvalidArgumentError } from "../../lib/errors.ts";
import type { Mount } from "../../runtime/api.ts";
import { type LxcConfigLine, lxcConfigText, mountEntry } from "../lxc/lxc_config.ts";
import type { PodFiles } from "./pod_files.ts";

/** Where host binaries the CT runs are bind-mounted (inside the CT). */
export const helperDir = ".pve-cri";

const propagation: Record<string, string> = {
  PROPAGATION_PRIVATE: "rprivate",
  PROPAGATION_HOST_TO_CONTAINER: "rslave",
  PROPAGATION_BIDIRECTIONAL: "rshared",
};

/** A CRI mount pve-cri can express, or InvalidArgument naming it. */
export function checkMount(mount: Mount, index: number): void {
  const where = `config.mounts[${index}]`;
  const bad = (why: string) =>
    new InvalidArgumentError(`${where} (${mount.containerPath} ← ${mount.hostPath}): ${why}`, {
      details: { field: where },
    });
  if (!mount.containerPath.startsWith("/")) throw bad("container_path must be absolute");
  if (mount.containerPath.split("/").includes("..")) throw bad('container_path has ".."');
  if (!mount.hostPath.startsWith("/")) throw bad("host_path must be absolute");
  if (mount.hostPath.split("/").includes("..")) throw bad('host_path has ".."');
  if (/[\n\0]/.test(mount.containerPath + mount.hostPath)) throw bad("path spans lines");
  if (mount.propagation !== "" && propagation[mount.propagation] === undefined) {
    throw bad(`unknown propagation ${mount.propagation}`);
  }
  const info = statOrUndefined(mount.hostPath);
  if (info !== undefined && !info.isDirectory && mount.containerPath.endsWith("/")) {
    throw bad("host_path is a file where a directory is expected");
  }
}

export interface IncludeInput {
  /** The CT's init command line. */
  init: string;
  namespaces: Record<string, string>;
  mounts: Mount[];
  podFiles: PodFiles;
  /** Host binaries to bind into the CT: name under /.pve-cri → host path. */
  helpers: Record<string, string>;
}

export function includeLines(input: IncludeInput): LxcConfigLine[] {
  // PVE generates `lxc.init.cmd` from the CT's entrypoint (PVE 9.1 sets the image's) before
  // the raw lines: the include's comes later and wins, with no API call to change it.
  const lines: LxcConfigLine[] = [["lxc.init.cmd", input.init]];
  for (const kind of ["net", "ipc", "uts"]) {
    const path = input.namespaces[kind];
    if (path !== undefined) lines.push([`lxc.namespace.share.${kind}`, path]);
  }
  for (const [name, host] of Object.entries(input.helpers)) {
    lines.push([
      "lxc.mount.entry",
      mountEntry(host, `${helperDir}/${name}`, "none", ["bind", "ro", "create=file"]),
    ]);
  }
  const targets = new Set(input.mounts.map((m) => m.containerPath.replace(/\/+$/, "")));
  const podFile = (host: string | undefined, target: string) => {
    if (host === undefined || targets.has(target)) return;
    lines.push(["lxc.mount.entry", mountEntry(host, target, "none", ["bind", "create=file"])]);
  };
  podFile(input.podFiles.resolvConf, "/etc/resolv.conf");
  podFile(input.podFiles.hostname, "/etc/hostname");
  podFile(input.podFiles.hosts, "/etc/hosts");
  input.mounts.forEach((mount, i) => {
    checkMount(mount, i);
    let info = statOrUndefined(mount.hostPath);
    if (info === undefined) {
      // As containerd does: a missing host directory is made.
      Deno.mkdirSync(mount.hostPath, { recursive: true });
      info = Deno.statSync(mount.hostPath);
    }
    const options = [
      "rbind",
      ...(mount.readonly ? ["ro"] : []),
      info.isDirectory ? "create=dir" : "create=file",
      ...(mount.propagation === "" ? [] : [propagation[mount.propagation]!]),
    ];
    lines.push([
      "lxc.mount.entry",
      mountEntry(mount.hostPath, mount.containerPath, "none", options),
    ]);
  });
  return lines;
}

export function writeIncludeFile(path: string, input: IncludeInput): number {
  const lines = includeLines(input);
  Deno.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // Not atomic: nothing starts the CT before its configuration step has ended, and a step cut
  // short writes the file again.
  Deno.writeTextFileSync(path, lxcConfigText(lines), { mode: 0o640 });
  return lines.filter(([key]) => key === "lxc.mount.entry").length;
}

/**
 * Adds `lxc.include: FILE` to the CT's PVE config (in its main section, before any snapshot),
 * once: a repeated call finds it there.
 */
export function addIncludeLine(pveConfigDir: string, vmid: number, includeFile: string): void {
  const path = join(pveConfigDir, `${vmid}.conf`);
  const text = Deno.readTextFileSync(path);
  const line = `lxc.include: ${includeFile}`;
  const lines = text.split("\n");
  const section = lines.findIndex((l) => l.startsWith("["));
  const main = section === -1 ? lines : lines.slice(0, section);
  if (main.includes(line)) return;
  if (section === -1) {
    // A new CT has no snapshot sections: one appended write, which a killed process cannot
    // tear, and no temporary file (creating one costs more than everything else here).
    const file = Deno.openSync(path, { append: true });
    try {
      file.writeSync(new TextEncoder().encode(`${text.endsWith("\n") ? "" : "\n"}${line}\n`));
    } finally {
      file.close();
    }
    return;
  }
  while (main.length > 0 && main[main.length - 1] === "") main.pop();
  writeAtomic(path, [...main, line, "", ...lines.slice(section)].join("\n"));
}

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp.${Deno.pid}`;
  Deno.writeTextFileSync(tmp, text, { mode: 0o640 });
  Deno.renameSync(tmp, path);
}

function statOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch {
    return undefined;
  }
}
