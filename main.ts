/**
 * pve-cri's command line: `start` serves CRI, `replay` diagnoses the event log, `images`
 * manages the node's images.
 */
import { consoleOutput } from "./cli/output.ts";

const [command, ...args] = Deno.args;

// Each command loads what it needs (a start never loads the images client's gRPC library).
switch (command) {
  case "replay": {
    if (args.includes("--drift")) {
      const { runDrift } = await import("./cli/replay_drift.ts");
      Deno.exit(await runDrift(args, consoleOutput));
    }
    const { runReplay } = await import("./cli/replay.ts");
    Deno.exit(runReplay(args, consoleOutput));
    break;
  }
  case "start": {
    const { runStart } = await import("./cli/start.ts");
    Deno.exit(await runStart(args, consoleOutput));
    break;
  }
  case "images": {
    const { runImages } = await import("./cli/images.ts");
    Deno.exit(await runImages(args, consoleOutput));
    break;
  }
  case "-h":
  case "--help":
    consoleOutput.line(
      "Usage: deno run -A main.ts start|replay|images [OPTIONS] (each has --help);\n" +
        "as tasks: deno task start, deno task replay, deno task images",
    );
    Deno.exit(0);
    break;
  default:
    consoleOutput.error(
      `pve-cri: unknown command "${command ?? ""}": use start, replay or images (see --help)`,
    );
    Deno.exit(2);
}
