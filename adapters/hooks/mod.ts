/**
 * OCI hooks (hooks.d): which hooks a new container gets, decided at creation as CRI-O does,
 * and running one with the OCI state on stdin.
 */
import { FailedPreconditionError } from "../../lib/errors.ts";
import type { HookTarget } from "./hook_config.ts";

export type { HookTarget } from "./hook_config.ts";

export interface HookDefinition {
  /** OCI stage: createRuntime, createContainer, prestart, startContainer, poststart, poststop. */
  phase: string;
  /** Unique in the container: `STAGE:FILE`. */
  name: string;
  path: string;
  /** argv, argv[0] first (OCI: as execv takes it). */
  args?: string[];
  /** The hook's whole environment (OCI: nothing is inherited). */
  env?: string[];
  timeoutSeconds?: number;
}

/** What a hook did: its exit, how long it took, and the ends of its output. */
export interface HookOutcome {
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** A hook failed (non-zero exit, a signal, its timeout): its outcome says how. */
export class HookFailedError extends FailedPreconditionError {
  constructor(readonly hook: HookDefinition, readonly outcome: HookOutcome, message: string) {
    super(`OCI hook ${hook.name} (${hook.path}) ${message}`, {
      details: { hook: hook.name, stage: hook.phase },
    });
  }
}

/** Runs a program in the container's namespaces (for startContainer hooks). */
export type RunInContainer = (request: {
  argv: string[];
  env: string[];
  stdin: Uint8Array;
  timeoutSeconds: number;
  signal: AbortSignal;
}) => Promise<{ exitCode: number; stdout: Uint8Array; stderr: Uint8Array; timedOut: boolean }>;

export interface HookRunOptions {
  signal: AbortSignal;
  /** The hook's working directory (the bundle). */
  cwd?: string;
  /** Set for startContainer hooks, which run in the container (OCI). */
  inContainer?: RunInContainer;
}

export interface HookRunner {
  /** The hooks that apply to a container, decided at creation (as CRI-O does). */
  hooksFor(target: HookTarget): HookDefinition[];
  /** Runs one hook with the OCI state on stdin; rejects with HookFailedError when it fails. */
  run(
    hook: HookDefinition,
    state: Record<string, unknown>,
    options: HookRunOptions,
  ): Promise<HookOutcome>;
}

/** No hooks configured. */
export const noHooks: HookRunner = {
  hooksFor: () => [],
  run: () =>
    Promise.resolve({
      exitCode: 0,
      signal: null,
      durationMs: 0,
      stdout: "",
      stderr: "",
      timedOut: false,
    }),
};
