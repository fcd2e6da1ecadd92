/** Runs a node tool (unshare, nsenter, umount, sysctl) with an argument array and a timeout. */
import { RuntimeError } from "../../lib/errors.ts";

export class NodeToolError extends RuntimeError {
  constructor(readonly tool: string, message: string, readonly exitCode: number | null) {
    super("Internal", message, { details: { tool, exitCode } });
  }
}

export async function runTool(
  tool: string,
  args: readonly string[],
  timeoutMs = 10_000,
): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(tool, {
      args: [...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new NodeToolError(tool, `${tool} not found on the node`, null);
    }
    throw error;
  }
  if (output.code !== 0) {
    const stderr = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-2).join("; ");
    throw new NodeToolError(
      tool,
      `${tool} ${args.join(" ")} failed (exit ${output.code})${stderr ? `: ${stderr}` : ""}`,
      output.code,
    );
  }
  return new TextDecoder().decode(output.stdout);
}
