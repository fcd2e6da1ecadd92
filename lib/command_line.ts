/**
 * Command-line parsing every task shares: `-h`/`--help`, and errors that name the option as
 * the user typed it (node:util's own messages quote unevenly and suggest `--`).
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** Bad usage: the message is one line for stderr; exit status 2. */
export class UsageError extends Error {}

export interface CommandLine<O extends ParseArgsOptionsConfig> {
  values: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true }>>["values"];
  positionals: string[];
  /** `-h` or `--help` was given: print the usage, exit 0. */
  help: boolean;
}

export function parseCommandLine<O extends ParseArgsOptionsConfig>(
  args: string[],
  options: O,
): CommandLine<O> {
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { ...options, help: { type: "boolean", short: "h" } },
    });
    const { help, ...rest } = values as Record<string, unknown>;
    return { values: rest as CommandLine<O>["values"], positionals, help: help === true };
  } catch (error) {
    throw new UsageError(usageMessage(error));
  }
}

function usageMessage(error: unknown): string {
  const { code, message } = error as { code?: string; message: string };
  const option = /'(-[^' <]*)/.exec(message)?.[1];
  if (option === undefined) return message;
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option "${option}" (see --help)`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return message.includes("argument missing")
        ? `option "${option}" needs a value`
        : `option "${option}" takes no value`;
    default:
      return message;
  }
}
