/** A container's process: its argv and environment, from the CRI's config over the image's. */

/** The argv as containerd builds it: command + args, else entrypoint + (args or the image's cmd). */
export function processArgv(
  spec: { command: readonly string[]; args: readonly string[] },
  image: { entrypoint: readonly string[]; cmd: readonly string[] } | undefined,
): string[] {
  if (spec.command.length > 0) return [...spec.command, ...spec.args];
  return [...image?.entrypoint ?? [], ...(spec.args.length > 0 ? spec.args : image?.cmd ?? [])];
}

/** The process environment: the image's env, then the CRI's on top, as containerd merges them. */
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
