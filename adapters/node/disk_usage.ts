/**
 * What a CT's root filesystem holds, as `du` counts it: allocated blocks and inodes, each hard
 * link once, never crossing into another filesystem (a bind-mounted volume is not the CT's).
 */
import { join } from "node:path";

export interface DiskUsage {
  bytes: number;
  inodes: number;
}

export function diskUsage(root: string): DiskUsage | undefined {
  let top: Deno.FileInfo;
  try {
    top = Deno.lstatSync(root);
  } catch {
    return undefined;
  }
  const seen = new Set<string>();
  const usage: DiskUsage = { bytes: 0, inodes: 0 };
  const count = (info: Deno.FileInfo) => {
    if ((info.nlink ?? 1) > 1) {
      const key = `${info.dev}:${info.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    usage.inodes += 1;
    usage.bytes += (info.blocks ?? 0) * 512;
  };
  count(top);
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      continue; // removed while we walked: the CT is writing, as it may
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(path);
      } catch {
        continue;
      }
      if (info.dev !== top.dev) continue;
      count(info);
      if (info.isDirectory) pending.push(path);
    }
  }
  return usage;
}
