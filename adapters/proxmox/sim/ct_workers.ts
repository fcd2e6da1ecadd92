/**
 * The work of CT tasks (what runs after the UPID was answered). Each is described by a small
 * JSON record, so a task interrupted by a crash can run again from it; every step checks
 * what is already done first.
 */
import type { TaskContext } from "./tasks.ts";
import type { SimNode } from "./endpoint.ts";
import type { CtConfig } from "./ct_config.ts";
import { runSpecOf, setEnv } from "./ct_view.ts";
import { commandLine, type OciImageConfig, readOciImageConfig } from "./oci_archive.ts";
import { netFormat, rootfsFormat } from "./schema/lxc_options.ts";
import { parsePropertyString, printPropertyString } from "./schema/validate.ts";

export type CtOp =
  | { op: "create"; vmid: number; ostemplate: string; storage: string; start: boolean }
  | { op: "start"; vmid: number; skiplock: boolean }
  | { op: "stop"; vmid: number; skiplock: boolean }
  | { op: "shutdown"; vmid: number; timeout: number; forceStop: boolean }
  | { op: "destroy"; vmid: number };

export const taskTypes: Readonly<Record<CtOp["op"], string>> = {
  create: "vzcreate",
  start: "vzstart",
  stop: "vzstop",
  shutdown: "vzshutdown",
  destroy: "vzdestroy",
};

const newDisk = /^(?:([a-z][a-z0-9\-_.]*[a-z0-9]):)?(\d+(?:\.\d+)?)$/i;

/** Runs one CT task; `failWith` (fault injection) fails it as a step of its own would. */
export async function runCtOp(
  node: SimNode,
  op: CtOp,
  context: TaskContext,
  failWith?: string,
): Promise<void> {
  if (op.op === "create") return await create(node, op, context, failWith);
  if (failWith !== undefined) throw new Error(failWith);
  switch (op.op) {
    case "start":
      return await start(node, op.vmid, op.skiplock, context);
    case "stop":
      return await stop(node, op.vmid, op.skiplock, context);
    case "shutdown":
      return await shutdown(node, op, context);
    case "destroy":
      return await destroy(node, op.vmid, context);
  }
}

function checkLock(node: SimNode, vmid: number, skiplock: boolean): void {
  const lock = node.cts.load(vmid).config.options.lock;
  if (lock !== undefined && !skiplock && lock !== "mounted") {
    throw new Error(`CT is locked (${lock})`);
  }
}

async function create(
  node: SimNode,
  op: Extract<CtOp, { op: "create" }>,
  context: TaskContext,
  failWith: string | undefined,
): Promise<void> {
  const { vmid } = op;
  try {
    const { config } = node.cts.load(vmid);
    const templatePath = node.storage.templatePath(op.ostemplate);
    if (templatePath === undefined) throw new Error(`volume '${op.ostemplate}' does not exist`);
    const rootfs = config.options.rootfs ?? `${op.storage}:4`;
    const parsed = parsePropertyString(rootfsFormat, rootfs);
    const volume = "values" in parsed ? String(parsed.values.volume) : "";
    const disk = newDisk.exec(volume);
    if (disk !== null) {
      const storage = disk[1] ?? op.storage;
      const size = Number(disk[2]);
      // A create run again after a crash finds the disk it had allocated.
      const volid = node.storage.disksOf(vmid)[0] ??
        node.storage.allocateDisk(storage, vmid, size, node.now());
      context.log(`allocated volume ${volid} (${size} GiB)`);
      config.options.rootfs = rootfs.replace(volume, volid) +
        (rootfs.includes("size=") ? "" : `,size=${size}G`);
    }
    if (failWith !== undefined) throw new Error(failWith);
    await node.driver.create({
      vmid,
      templatePath,
      rootfs: config.options.rootfs ?? "",
      unprivileged: config.options.unprivileged === "1",
      ...(config.options.ostype === undefined ? {} : { ostype: config.options.ostype }),
      log: context,
    });
    const image = templatePath.endsWith(".tar")
      ? await readOciImageConfig(templatePath)
      : undefined;
    if (image !== undefined) applyImageConfig(config, image, context);
    config.options.arch ??= "amd64";
    config.options.hostname ??= `CT${vmid}`;
    config.options.memory ??= "512";
    config.options.swap ??= "512";
    config.options.ostype ??= guessOsType(op.ostemplate);
    delete config.options.lock;
    node.cts.write(vmid, config);
    if (op.start) await node.driver.start(runSpecOf(vmid, config), context);
  } catch (error) {
    node.storage.freeDisks(vmid);
    node.cts.remove(vmid);
    await node.driver.destroy(vmid, context).catch(() => undefined);
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`unable to create CT ${vmid} - ${reason}`);
  }
}

async function start(node: SimNode, vmid: number, skiplock: boolean, context: TaskContext) {
  checkLock(node, vmid, skiplock);
  const { config } = node.cts.load(vmid);
  if (config.options.template === "1") throw new Error("you can't start a CT if it's a template");
  if ((await node.driver.status(vmid)).state === "running") return;
  await node.driver.start(runSpecOf(vmid, config), context);
}

async function stop(node: SimNode, vmid: number, skiplock: boolean, context: TaskContext) {
  checkLock(node, vmid, skiplock);
  if ((await node.driver.status(vmid)).state === "stopped") return;
  await node.driver.stop(vmid, context);
}

async function shutdown(
  node: SimNode,
  op: Extract<CtOp, { op: "shutdown" }>,
  context: TaskContext,
): Promise<void> {
  checkLock(node, op.vmid, false);
  if ((await node.driver.status(op.vmid)).state === "stopped") return;
  if (await node.driver.shutdown(op.vmid, op.timeout, context)) return;
  if (!op.forceStop) throw new Error("container did not stop");
  context.log("shutdown timeout reached, stopping container");
  await node.driver.stop(op.vmid, context);
}

async function destroy(node: SimNode, vmid: number, context: TaskContext): Promise<void> {
  const parsed = node.cts.read(vmid);
  if (parsed === undefined) return; // finished before a restart
  if (parsed.config.options.lock !== "destroyed") checkLock(node, vmid, false);
  if ((await node.driver.status(vmid)).state === "running") await node.driver.stop(vmid, context);
  parsed.config.options.lock = "destroyed";
  node.cts.write(vmid, parsed.config);
  await node.driver.destroy(vmid, context);
  node.storage.freeDisks(vmid);
  node.cts.remove(vmid);
  context.log(`CT ${vmid} destroyed`);
}

function guessOsType(ostemplate: string): string {
  const name = ostemplate.replace(/^.*\//, "");
  const known = [
    "debian",
    "devuan",
    "ubuntu",
    "centos",
    "fedora",
    "opensuse",
    "archlinux",
    "alpine",
    "gentoo",
    "nixos",
  ];
  return known.find((os) => name.startsWith(os)) ?? "unmanaged";
}

/** Fills in what PVE generates for each NIC: a MAC address from Proxmox's prefix. */
export function withGeneratedMacs(options: Record<string, string>): void {
  for (const [key, value] of Object.entries(options)) {
    if (!/^net\d+$/.test(key)) continue;
    const parsed = parsePropertyString(netFormat, value);
    if (!("values" in parsed) || parsed.values.hwaddr !== undefined) continue;
    const bytes = crypto.getRandomValues(new Uint8Array(3));
    const mac = [
      "BC",
      "24",
      "11",
      ...[...bytes].map((b) => b.toString(16).padStart(2, "0").toUpperCase()),
    ];
    options[key] = printPropertyString(netFormat, { ...parsed.values, hwaddr: mac.join(":") });
  }
}

/**
 * What PVE 9.1 takes from an OCI image on create: the command line (overwriting one given
 * to create), env, user, working dir and stop signal; console mode and host-managed NICs;
 * `unmanaged` as OS type when the image has no /etc/os-release (most application images).
 */
function applyImageConfig(config: CtConfig, image: OciImageConfig, context: TaskContext): void {
  context.log("Detected OCI archive");
  const command = commandLine(image);
  if (command !== undefined && command !== "/sbin/init") config.options.entrypoint = command;
  if (image.env !== undefined) setEnv(config, image.env.join("\0"));
  const lxc = config.lxc.filter(([key]) =>
    !/^lxc\.(?:init\.(?:uid|gid|cwd)|signal\.halt)$/.test(key)
  );
  if (image.user !== undefined) {
    const [uid, gid] = image.user.split(":");
    if (/^\d+$/.test(uid ?? "")) lxc.push(["lxc.init.uid", uid!]);
    if (/^\d+$/.test(gid ?? "")) lxc.push(["lxc.init.gid", gid!]);
  }
  if (image.workingDir !== undefined) lxc.push(["lxc.init.cwd", image.workingDir]);
  lxc.push(["lxc.signal.halt", image.stopSignal ?? "SIGTERM"]);
  config.lxc = lxc;
  config.options.cmode ??= "console";
  config.options.ostype ??= "unmanaged";
  for (const [key, value] of Object.entries(config.options)) {
    if (/^net\d+$/.test(key) && !value.includes("host-managed=")) {
      config.options[key] = `${value},host-managed=1`;
    }
  }
}
