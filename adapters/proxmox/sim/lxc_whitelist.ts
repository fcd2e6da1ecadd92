/**
 * The raw `lxc.*` keys Proxmox accepts in `/etc/pve/lxc/<vmid>.conf` (pve-container
 * `LXC/Config.pm` `is_valid_lxc_conf_key`). Anything else — `lxc.namespace.*` included — is
 * refused, which is why pve-cri joins pod namespaces through one `lxc.include` file.
 */
const allowed = new Set([
  "lxc.apparmor.profile",
  "lxc.apparmor.allow_incomplete",
  "lxc.apparmor.allow_nesting",
  "lxc.apparmor.raw",
  "lxc.selinux.context",
  "lxc.include",
  "lxc.arch",
  "lxc.uts.name",
  "lxc.signal.halt",
  "lxc.signal.reboot",
  "lxc.signal.stop",
  "lxc.init.cmd",
  "lxc.init.cwd",
  "lxc.init.uid",
  "lxc.init.gid",
  "lxc.init.groups",
  "lxc.pty.max",
  "lxc.console.logfile",
  "lxc.console.path",
  "lxc.tty.max",
  "lxc.devtty.dir",
  "lxc.hook.autodev",
  "lxc.hook.pre-start",
  "lxc.hook.pre-mount",
  "lxc.hook.mount",
  "lxc.hook.start",
  "lxc.hook.stop",
  "lxc.hook.post-stop",
  "lxc.hook.clone",
  "lxc.hook.destroy",
  "lxc.hook.version",
  "lxc.autodev",
  "lxc.kmsg",
  "lxc.mount.fstab",
  "lxc.mount.entry",
  "lxc.mount.auto",
  "lxc.rootfs.mount",
  "lxc.cap.drop",
  "lxc.cap.keep",
  "lxc.seccomp.profile",
  "lxc.seccomp.notify.proxy",
  "lxc.seccomp.notify.cookie",
  "lxc.idmap",
  "lxc.log.level",
  "lxc.log.file",
  "lxc.start.auto",
  "lxc.start.delay",
  "lxc.start.order",
  "lxc.group",
  "lxc.environment",
  "lxc.environment.runtime",
  "lxc.environment.hooks",
  "lxc.sysctl.fs.mqueue",
  "lxc.sysctl.kernel.msgmax",
  "lxc.sysctl.kernel.msgmnb",
  "lxc.sysctl.kernel.msgmni",
  "lxc.sysctl.kernel.sem",
  "lxc.sysctl.kernel.shmall",
  "lxc.sysctl.kernel.shmmax",
  "lxc.sysctl.kernel.shmmni",
  "lxc.sysctl.kernel.shm_rmid_forced",
]);

/** Old key names LXC 2.x used; accepted with a warning. */
const deprecated = new Set([
  "lxc.aa_profile",
  "lxc.aa_allow_incomplete",
  "lxc.utsname",
  "lxc.haltsignal",
  "lxc.rebootsignal",
  "lxc.stopsignal",
  "lxc.init_cmd",
  "lxc.pts",
  "lxc.console",
  "lxc.tty",
  "lxc.devttydir",
  "lxc.mount",
  "lxc.id_map",
  "lxc.loglevel",
  "lxc.logfile",
  "lxc.start_auto",
  "lxc.start_delay",
  "lxc.start_order",
]);

const refused: Readonly<Record<string, string>> = {
  "lxc.rootfs.path": "lxc.rootfs.path is not supported, please use 'rootfs' instead",
  "lxc.rootfs.options": "lxc.rootfs.options is not supported, please use mount point options " +
    "in the 'rootfs' key",
};

/** `true` if Proxmox keeps the key, a reason if it refuses it by name, `false` otherwise. */
export function lxcKeyValidity(key: string): true | false | string {
  if (allowed.has(key) || deprecated.has(key)) return true;
  if (/^lxc\.(?:cgroup2?|prlimit|net)\./.test(key)) return true;
  return refused[key] ?? false;
}
