/**
 * OCI hook configs in hooks.d, the format CRI-O and podman read (`version: "1.0.0"`): which
 * program, when it applies (`always`, `annotations`, `commands`, `hasBindMounts`, all that are
 * set must match) and at which stages. A file that does not parse or validate is refused with
 * the reason; the caller skips it.
 */

export const ociStages = [
  "prestart",
  "createRuntime",
  "createContainer",
  "startContainer",
  "poststart",
  "poststop",
] as const;
export type OciStage = (typeof ociStages)[number];

export interface HookConfig {
  /** The file's name: in a later directory it masks the same name in an earlier one. */
  file: string;
  hook: { path: string; args: string[]; env: string[]; timeout?: number };
  when: {
    always?: boolean;
    annotations?: [RegExp, RegExp][];
    commands?: RegExp[];
    hasBindMounts?: boolean;
  };
  stages: OciStage[];
}

/** What a container offers the `when` conditions. */
export interface HookTarget {
  annotations: Record<string, string>;
  /** process.args[0]. */
  command: string;
  /** The CRI asked for host-to-container bind mounts. */
  hasBindMounts: boolean;
}

export function parseHookConfig(text: string, file: string): HookConfig {
  const raw = JSON.parse(text) as Record<string, unknown>;
  if (typeof raw !== "object" || raw === null) throw new Error("not a JSON object");
  if (raw.version !== "1.0.0") {
    throw new Error(`unsupported version ${JSON.stringify(raw.version)}`);
  }
  const hook = raw.hook as Record<string, unknown> | undefined;
  if (typeof hook?.path !== "string" || !hook.path.startsWith("/")) {
    throw new Error("hook.path must be an absolute path");
  }
  let info: Deno.FileInfo | undefined;
  try {
    info = Deno.statSync(hook.path);
  } catch {
    // reported below
  }
  if (info === undefined || !info.isFile) throw new Error(`hook.path ${hook.path} is not a file`);
  if (((info.mode ?? 0) & 0o111) === 0) {
    throw new Error(`hook.path ${hook.path} is not executable`);
  }
  const strings = (value: unknown, field: string): string[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
      throw new Error(`${field} must be a list of strings`);
    }
    return value;
  };
  const timeout = hook.timeout;
  if (timeout !== undefined && (!Number.isInteger(timeout) || (timeout as number) <= 0)) {
    throw new Error("hook.timeout must be a positive integer (seconds)");
  }
  const when = (raw.when ?? {}) as Record<string, unknown>;
  const parsed: HookConfig["when"] = {};
  if (when.always !== undefined) {
    if (typeof when.always !== "boolean") throw new Error("when.always must be a boolean");
    parsed.always = when.always;
  }
  if (when.hasBindMounts !== undefined) {
    if (typeof when.hasBindMounts !== "boolean") {
      throw new Error("when.hasBindMounts must be a boolean");
    }
    parsed.hasBindMounts = when.hasBindMounts;
  }
  if (when.annotations !== undefined) {
    if (typeof when.annotations !== "object" || when.annotations === null) {
      throw new Error("when.annotations must map key regexes to value regexes");
    }
    parsed.annotations = Object.entries(when.annotations).map(([key, value]) => {
      if (typeof value !== "string") throw new Error(`when.annotations[${key}] must be a string`);
      return [regex(key, "when.annotations key"), regex(value, `when.annotations[${key}]`)];
    });
  }
  if (when.commands !== undefined) {
    parsed.commands = strings(when.commands, "when.commands").map((c) => regex(c, "when.commands"));
  }
  if (Object.keys(parsed).length === 0) {
    throw new Error("when must set always, annotations, commands or hasBindMounts");
  }
  const stages = strings(raw.stages, "stages");
  if (stages.length === 0) throw new Error("stages is empty");
  for (const stage of stages) {
    if (!(ociStages as readonly string[]).includes(stage)) {
      throw new Error(`unknown stage ${JSON.stringify(stage)}`);
    }
  }
  return {
    file,
    hook: {
      path: hook.path,
      args: strings(hook.args, "hook.args"),
      env: strings(hook.env, "hook.env"),
      ...(timeout === undefined ? {} : { timeout: timeout as number }),
    },
    when: parsed,
    stages: stages as OciStage[],
  };
}

/** Every condition that is set matches (as podman's hooks 1.0.0 `When.Match`). */
export function hookApplies(config: HookConfig, target: HookTarget): boolean {
  const { when } = config;
  if (when.always === false) return false;
  if (when.hasBindMounts !== undefined && !(when.hasBindMounts && target.hasBindMounts)) {
    return false;
  }
  for (const [key, value] of when.annotations ?? []) {
    const found = Object.entries(target.annotations).some(([k, v]) => key.test(k) && value.test(v));
    if (!found) return false;
  }
  if (when.commands !== undefined && !when.commands.some((c) => c.test(target.command))) {
    return false;
  }
  return true;
}

function regex(source: string, field: string): RegExp {
  try {
    return new RegExp(source);
  } catch (error) {
    throw new Error(`${field}: bad regex ${JSON.stringify(source)}: ${(error as Error).message}`);
  }
}
