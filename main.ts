/**
 * pve-cri's command line: `start` serves CRI, `replay` diagnoses the event log, `images`
 * manages the node's images.
 */
import { runImages } from "./cli/images.ts";
import { consoleOutput } from "./cli/output.ts";
import { runReplay } from "./cli/replay.ts";
import { runStart } from "./cli/start.ts";

const [command, ...args] = Deno.args;

switch (command) {
  case "replay":
    Deno.exit(runReplay(args, consoleOutput));
    break;
  case "start":
    Deno.exit(await runStart(args, consoleOutput));
    break;
  case "images":
    Deno.exit(await runImages(args, consoleOutput));
    break;
  default:
    consoleOutput.error(`pve-cri: unknown command "${command ?? ""}": use start, replay or images`);
    Deno.exit(2);
}
