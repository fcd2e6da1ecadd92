/**
 * `deno task images`: images on this node, beside a running server or alone.
 *
 *   import FILE.tar [--name REF]   an OCI layout or `docker save` archive (plain or gzip)
 *   list [--json]
 *   remove REF                      by id (or a unique prefix), tag or digest
 *   pull REF [--creds USER:PASS | --creds-file FILE]
 *
 *   --state-dir DIR   as `start` (default /var/lib/pve-cri for root, ./.pve-cri otherwise)
 *   --backend, --config   as `start`; used when no server owns the state dir
 *
 * With a server on the state dir, the work goes through it (it sees the image at once; an
 * archive's path is made absolute, for the server to read); without, it runs here. On a
 * terminal, pull and import show each layer's progress; without one, a summary line. Exit status: 0 done, 1 failed (one line on stderr), 2 bad arguments.
 */
import { resolve } from "node:path";
import { errorMessage, InvalidArgumentError } from "../lib/errors.ts";
import { rootLogger } from "../lib/log.ts";
import { defaultStateDir } from "../lib/paths.ts";
import { readServerInfo } from "../lib/state_dir_lock.ts";
import type { RegistryAuth } from "../runtime/api.ts";
import { type Backend, StateDirInUseError } from "../runtime/open_runtime.ts";
import {
  type ImageRow,
  type ImagesBackend,
  localBackend,
  remoteBackend,
} from "./images_backend.ts";
import { parseCommandLine, UsageError } from "../lib/command_line.ts";
import { type Output, table } from "./output.ts";
import { humanBytes, ProgressView } from "./progress_view.ts";

const usage = "use: images import FILE [--name REF] | list [--json] | remove REF | " +
  "pull REF [--creds USER:PASS | --creds-file FILE] (see --help)";

export const imagesUsage = `Usage: deno task images COMMAND [OPTIONS]

The node's images, beside a running server (through it) or alone:
  import FILE.tar [--name REF]   an OCI layout or docker-save archive (plain or gzip)
  list [--json]
  remove REF                     by id (or a unique prefix), tag or digest
  pull REF [--creds USER:PASS | --creds-file FILE]

  --state-dir DIR    as start's (default /var/lib/pve-cri as root, ./.pve-cri otherwise)
  --backend auto|memory|proxmox, --config FILE
                     as start's; used when no server owns the state dir
  -h, --help         this text

Exit status: 0 done, 1 failed (one line on stderr), 2 bad arguments.`;

interface ImagesArgs {
  command: "import" | "list" | "remove" | "pull";
  target: string | undefined;
  stateDir: string;
  backend: Backend;
  config: string | undefined;
  name: string | undefined;
  json: boolean;
  auth: RegistryAuth | undefined;
}

/** The options, or undefined for `--help`; throws UsageError or InvalidArgumentError. */
export function parseImagesArgs(args: string[]): ImagesArgs | undefined {
  const { values, positionals, help } = parseCommandLine(args, {
    "state-dir": { type: "string" },
    backend: { type: "string", default: "auto" },
    config: { type: "string" },
    name: { type: "string" },
    json: { type: "boolean", default: false },
    creds: { type: "string" },
    "creds-file": { type: "string" },
  });
  if (help) return undefined;
  const [command, target, ...rest] = positionals;
  if (!["import", "list", "remove", "pull"].includes(command ?? "")) {
    throw new UsageError(command === undefined ? usage : `unknown command "${command}": ${usage}`);
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (command !== "list" && target === undefined) {
    throw new InvalidArgumentError(`${command} needs ${command === "import" ? "a FILE" : "a REF"}`);
  }
  const backend = values.backend === "auto" ? "memory" : values.backend!;
  if (!["memory", "proxmox"].includes(backend)) {
    throw new InvalidArgumentError(
      `--backend must be auto, memory or proxmox, got "${values.backend}"`,
    );
  }
  if (values.creds !== undefined && values["creds-file"] !== undefined) {
    throw new InvalidArgumentError("give --creds or --creds-file, not both");
  }
  const credentials = values.creds ??
    (values["creds-file"] === undefined ? undefined : readCredsFile(values["creds-file"]));
  return {
    command: command as ImagesArgs["command"],
    target,
    stateDir: values["state-dir"] ?? defaultStateDir(),
    backend: backend as Backend,
    config: values.config,
    name: values.name,
    json: values.json ?? false,
    auth: credentials === undefined ? undefined : splitCreds(credentials),
  };
}

function readCredsFile(path: string): string {
  try {
    return Deno.readTextFileSync(path).split("\n")[0]!.trim();
  } catch (error) {
    throw new InvalidArgumentError(`--creds-file "${path}" cannot be read: ${errorMessage(error)}`);
  }
}

/** `USER:PASS` (the password may hold colons). Never echoed in an error. */
function splitCreds(text: string): RegistryAuth {
  const colon = text.indexOf(":");
  if (colon <= 0) throw new InvalidArgumentError("credentials must be USER:PASS");
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Runs one command; returns the exit status. */
export async function runImages(
  args: string[],
  out: Output,
  terminal: { isTerminal: boolean; write(text: string): void } = stderrTerminal(),
): Promise<number> {
  let parsed: ImagesArgs | undefined;
  try {
    parsed = parseImagesArgs(args);
  } catch (error) {
    out.error(`pve-cri images: ${errorMessage(error)}`);
    return 2;
  }
  if (parsed === undefined) {
    out.line(imagesUsage);
    return 0;
  }
  let backend: ImagesBackend;
  try {
    backend = await openBackend(parsed);
  } catch (error) {
    out.error(`pve-cri images: ${errorMessage(error)}`);
    return 1;
  }
  try {
    await run(parsed, backend, out, terminal);
    return 0;
  } catch (error) {
    out.error(`pve-cri images: ${errorMessage(error)}`);
    return 1;
  } finally {
    await backend.close();
  }
}

async function openBackend(args: ImagesArgs): Promise<ImagesBackend> {
  const log = rootLogger.with({ component: "images" });
  try {
    return await localBackend({
      stateDir: args.stateDir,
      backend: args.backend,
      ...(args.config === undefined ? {} : { configFile: args.config }),
      log,
    });
  } catch (error) {
    if (!(error instanceof StateDirInUseError)) throw error;
    const server = error.holder ?? readServerInfo(args.stateDir);
    if (server === undefined) {
      throw new StateDirInUseError(args.stateDir, undefined);
    }
    return await remoteBackend(server.socket);
  }
}

async function run(
  args: ImagesArgs,
  backend: ImagesBackend,
  out: Output,
  terminal: { isTerminal: boolean; write(text: string): void },
): Promise<void> {
  switch (args.command) {
    case "list": {
      const rows = await backend.list();
      if (args.json) out.line(JSON.stringify(rows, null, 2));
      else out.line(listTable(rows));
      return;
    }
    case "remove":
      await backend.remove(args.target!);
      out.line(`Removed ${args.target}`);
      return;
    case "pull":
    case "import": {
      const view = new ProgressView(terminal);
      const started = performance.now();
      let image: ImageRow;
      try {
        image = args.command === "pull"
          ? await backend.pull(args.target!, args.auth, (p) => view.update(p))
          : await backend.import(resolve(args.target!), args.name, (p) => view.update(p));
      } finally {
        view.finish();
      }
      const seconds = (performance.now() - started) / 1000;
      const verb = args.command === "pull" ? "Pulled" : "Imported";
      const name = image.repoTags[0] ?? args.target!;
      out.line(`${verb} ${name}: ${image.id} (${view.summary(seconds)})`);
      return;
    }
  }
}

/** As `crictl images`: repository, tag, short id, size. */
export function listTable(rows: ImageRow[]): string {
  const lines: string[][] = [];
  for (const row of rows) {
    const names = row.repoTags.length > 0 ? row.repoTags : ["<none>:<none>"];
    for (const name of names) {
      const colon = name.lastIndexOf(":");
      lines.push([
        name.slice(0, colon),
        name.slice(colon + 1),
        row.id.slice(7, 20),
        humanBytes(row.size),
      ]);
    }
  }
  return table(["IMAGE", "TAG", "IMAGE ID", "SIZE"], lines);
}

function stderrTerminal(): { isTerminal: boolean; write(text: string): void } {
  const encoder = new TextEncoder();
  return {
    isTerminal: Deno.stderr.isTerminal(),
    write: (text) => void Deno.stderr.writeSync(encoder.encode(text)),
  };
}
