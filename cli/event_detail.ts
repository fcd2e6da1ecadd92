/**
 * One short line of what an event carried, for replay's timeline: its identifying values
 * first (VMID, UPID, exit code, pid, image, reason), then the other plain fields, from the
 * redacted payload. `--json` has the whole payload.
 */

/** Fields that say most about what happened, in the order they are shown. */
const FIRST = [
  "vmid",
  "upid",
  "operation",
  "exitCode",
  "signal",
  "pid",
  "reason",
  "image",
  "imageRef",
  "imageId",
  "name",
  "containerId",
  "error",
  "message",
];
/** Too large or too repetitive for one line. */
const SKIPPED = new Set(["config", "envs", "hooks", "annotations", "labels", "result"]);
const MAX_VALUE = 72; // a whole UPID
const MAX_LINE = 140;

export function eventDetail(data: unknown): string {
  if (data === null || typeof data !== "object" || Array.isArray(data)) return "";
  const fields = flatten(data as Record<string, unknown>);
  const ips = addressesOf((data as { result?: unknown }).result);
  if (ips !== "") fields.push(["ips", ips]);
  const rank = (key: string) => {
    const index = FIRST.indexOf(key.split(".").at(-1)!);
    return index === -1 ? FIRST.length : index;
  };
  const parts = [...fields].sort((a, b) => rank(a[0]) - rank(b[0]))
    .map(([key, value]) => `${key}=${short(value)}`);
  const line = parts.join(" ");
  return line.length <= MAX_LINE ? line : `${line.slice(0, MAX_LINE - 1)}…`;
}

/** Plain fields, and those of objects one level down (`paths.net`, `metadata.name`). */
function flatten(data: Record<string, unknown>): [string, string][] {
  const fields: [string, string][] = [];
  for (const [key, value] of Object.entries(data)) {
    if (SKIPPED.has(key) || value === null || value === undefined || value === "") continue;
    if (typeof value !== "object") fields.push([key, String(value)]);
    else if (!Array.isArray(value)) {
      for (const [inner, leaf] of Object.entries(value as Record<string, unknown>)) {
        if (leaf !== null && leaf !== "" && typeof leaf !== "object") {
          fields.push([`${key}.${inner}`, String(leaf)]);
        }
      }
    }
  }
  return fields;
}

/** A CNI result's addresses (`10.88.0.2/16`), comma-separated. */
function addressesOf(result: unknown): string {
  const ips = (result as { ips?: unknown } | undefined)?.ips;
  if (!Array.isArray(ips)) return "";
  return ips.map((ip) => (ip as { address?: unknown })?.address)
    .filter((address) => typeof address === "string").join(",");
}

/** A 64-hex id as its 13-character short form (as the list shows ids); long values cut. */
function short(value: string): string {
  if (/^[0-9a-f]{64}$/.test(value)) return value.slice(0, 13);
  const text = /[\s"]/.test(value) ? JSON.stringify(value) : value;
  return text.length <= MAX_VALUE ? text : `${text.slice(0, MAX_VALUE - 1)}…`;
}
