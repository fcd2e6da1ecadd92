import { InvalidArgumentError, NotFoundError } from "../../../lib/errors.ts";
import type { PodRuntime } from "../../../runtime/api.ts";
import { callOf, type Message, required } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

/** Runs `cmd` in a running container: exit code and the two streams apart, bounded. */
export const execSync = (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
  const given = required(request.container_id, "container_id");
  const id = rt.resolveContainer(given);
  if (id === undefined) {
    throw new NotFoundError(`Container "${given}" not found`, { details: { container_id: given } });
  }
  const cmd = Array.isArray(request.cmd) ? request.cmd.map(String) : [];
  const timeout = Number(request.timeout ?? 0);
  if (!Number.isInteger(timeout) || timeout < 0) {
    throw new InvalidArgumentError("timeout must be a non-negative number of seconds", {
      details: { field: "timeout" },
    });
  }
  const result = await rt.execSync(id, { cmd, timeoutSeconds: timeout }, callOf(ctx));
  return { stdout: result.stdout, stderr: result.stderr, exit_code: result.exitCode };
};

/** The kubelet renamed the log file: the container's log writer opens a new one. */
export const reopenContainerLog = (rt: PodRuntime): UnaryHandler => async (request: Message) => {
  const given = required(request.container_id, "container_id");
  const id = rt.resolveContainer(given);
  if (id === undefined) {
    throw new NotFoundError(`Container "${given}" not found`, { details: { container_id: given } });
  }
  await rt.reopenContainerLog(id);
  return {};
};
