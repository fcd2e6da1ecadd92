// deno-lint-ignore-file no-console
/** pve-cri's command line: `start` serves CRI, `replay` diagnoses the event log. */

const [command, ...args] = Deno.args;

switch (command) {
  default:
    console.error(`Unknown command ${JSON.stringify(command ?? "")}: use start or replay`);
    console.error(args.length);
    Deno.exit(2);
}
