/** A container's process environment: the image's env, then the CRI's on top, as containerd merges them. */
export function mergeEnv(
  imageEnv: readonly string[],
  envs: readonly { key: string; value: string }[],
): string[] {
  const env = new Map<string, string>();
  for (const entry of imageEnv) {
    const eq = entry.indexOf("=");
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  for (const { key, value } of envs) env.set(key, value);
  return [...env].map(([k, v]) => `${k}=${v}`);
}
