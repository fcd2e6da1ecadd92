/**
 * Paths inside a running CT's root, read from the host through `/proc/PID/root` without
 * following a symlink out of it: absolute links resolve against the CT's root, as the kernel
 * would resolve them for the CT's own processes.
 */
import { posix } from "node:path";

/** The host path of `path` inside `root`, symlinks resolved within it; undefined if absent. */
export function resolveInRoot(root: string, path: string): string | undefined {
  let pending = path.split("/").filter((p) => p !== "" && p !== ".");
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === "..") {
      done.pop();
      continue;
    }
    const host = posix.join(root, ...done, part);
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(host);
    } catch {
      return undefined;
    }
    if (!info.isSymlink) {
      done.push(part);
      continue;
    }
    if (++links > 40) return undefined;
    const target = Deno.readLinkSync(host);
    const parts = target.split("/").filter((p) => p !== "" && p !== ".");
    if (target.startsWith("/")) done.length = 0;
    pending = [...parts, ...pending];
  }
  return posix.join(root, ...done);
}

/** Where a command name resolves in the CT, as execvp would with the process's PATH. */
export function findExecutable(root: string, command: string, env: string[]): string | undefined {
  const candidates = command.includes("/")
    ? [command]
    : (env.findLast((e) => e.startsWith("PATH="))?.slice(5) ??
      "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
      .split(":").filter((d) => d !== "").map((dir) => posix.join(dir, command));
  for (const candidate of candidates) {
    const host = resolveInRoot(root, posix.resolve("/", candidate));
    if (host === undefined) continue;
    try {
      const info = Deno.statSync(host);
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return candidate;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** uid and gid of a user (`uid[:gid]` or names from the CT's /etc/passwd and /etc/group). */
export function resolveUser(root: string, user: string): { uid: number; gid: number } {
  if (user === "") return { uid: 0, gid: 0 };
  const [name, group] = user.split(":") as [string, string | undefined];
  const passwd = readInRoot(root, "/etc/passwd");
  let uid: number;
  let gid: number | undefined;
  if (/^\d+$/.test(name)) {
    uid = Number(name);
    const entry = passwd.find((f) => f[2] === name);
    if (entry !== undefined) gid = Number(entry[3]);
  } else {
    const entry = passwd.find((f) => f[0] === name);
    if (entry === undefined) {
      throw new UserError(`unable to find user ${name}: no matching entries in passwd file`);
    }
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  }
  if (group !== undefined && group !== "") {
    if (/^\d+$/.test(group)) gid = Number(group);
    else {
      const entry = readInRoot(root, "/etc/group").find((f) => f[0] === group);
      if (entry === undefined) {
        throw new UserError(`unable to find group ${group}: no matching entries in group file`);
      }
      gid = Number(entry[2]);
    }
  }
  return { uid, gid: gid ?? 0 };
}

export class UserError extends Error {}

function readInRoot(root: string, path: string): string[][] {
  const host = resolveInRoot(root, path);
  if (host === undefined) return [];
  try {
    return Deno.readTextFileSync(host).split("\n").filter((l) => l !== "" && !l.startsWith("#"))
      .map((l) => l.split(":"));
  } catch {
    return [];
  }
}
