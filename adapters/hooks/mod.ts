/**
 * OCI hooks (hooks.d): which hooks a new container gets, and running one. The hooks issue
 * brings the real runner; until then no hook applies.
 */
export interface HookDefinition {
  /** OCI phase: createRuntime, createContainer, prestart, startContainer, poststart, poststop. */
  phase: string;
  name: string;
  path: string;
  args?: string[];
  timeoutSeconds?: number;
}

export interface HookRunner {
  /** The hooks that apply to a container, decided at creation (as CRI-O does). */
  hooksFor(container: { annotations: Record<string, string>; command: string[] }): HookDefinition[];
  /** Runs one hook with the OCI state on stdin; rejects when it fails or times out. */
  run(hook: HookDefinition, state: Record<string, unknown>, signal: AbortSignal): Promise<void>;
}

/** No hooks configured. */
export const noHooks: HookRunner = {
  hooksFor: () => [],
  run: () => Promise.resolve(),
};
