/**
 * LXC config lines (`key = value`), as the simulator writes a CT's generated config and the
 * node adapter writes a container's include file. A value cannot span lines: one that tries
 * is refused rather than letting it add a key of its own.
 */
export type LxcConfigLine = readonly [key: string, value: string];

export class LxcConfigError extends Error {}

export function lxcConfigText(lines: readonly LxcConfigLine[]): string {
  return lines.map(([key, value]) => {
    if (!/^lxc\.[a-z0-9_.]+$/i.test(key)) throw new LxcConfigError(`bad LXC key "${key}"`);
    if (/[\r\n\0]/.test(value)) {
      throw new LxcConfigError(`LXC value for ${key} spans lines`);
    }
    return value === "" ? `${key} =\n` : `${key} = ${value}\n`;
  }).join("");
}

/**
 * An `lxc.mount.entry` value: source, target relative to the rootfs (as LXC requires), and
 * options. Spaces in paths are written as `\040`, as fstab does.
 */
export function mountEntry(
  source: string,
  target: string,
  type: string,
  options: readonly string[],
): string {
  const escape = (path: string) => path.replaceAll("\\", "\\134").replaceAll(" ", "\\040");
  return `${escape(source)} ${escape(target.replace(/^\/+/, ""))} ${type} ${options.join(",")} 0 0`;
}
