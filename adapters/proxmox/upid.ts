/**
 * Unique process ids of PVE tasks (pve-common `PVE/UPID.pm`):
 * `UPID:{node}:{pid}:{pstart}:{starttime}:{type}:{id}:{user}:`, numbers in uppercase hex.
 */
export interface Upid {
  node: string;
  pid: number;
  pstart: number;
  /** Seconds since the epoch, by the node's clock. */
  starttime: number;
  type: string;
  /** The vmid for CT tasks; may be empty. */
  id: string;
  /** `user@realm` or `user@realm!tokenid`. */
  user: string;
}

const upidPattern =
  /^UPID:([a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$/;

/** Parses a UPID, or returns undefined if it is not one. */
export function parseUpid(text: string): Upid | undefined {
  const m = upidPattern.exec(text);
  if (m === null) return undefined;
  return {
    node: m[1]!,
    pid: parseInt(m[2]!, 16),
    pstart: parseInt(m[3]!, 16),
    starttime: parseInt(m[4]!, 16),
    type: m[5]!,
    id: m[6]!,
    user: m[7]!,
  };
}

function hex(value: number, width: number): string {
  return value.toString(16).toUpperCase().padStart(width, "0");
}

export function formatUpid(upid: Upid): string {
  return `UPID:${upid.node}:${hex(upid.pid, 8)}:${hex(upid.pstart, 8)}:${
    hex(upid.starttime, 8)
  }:${upid.type}:${upid.id}:${upid.user}:`;
}
