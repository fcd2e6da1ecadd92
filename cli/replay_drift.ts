/**
 * `deno task replay --drift`: the differences between the log and what Proxmox and the node
 * report, from the server that owns the state dir (its `GET /v1/drift`, which changes
 * nothing), beside it. Exit status: 0 none, 1 some, 2 no answer (or bad usage).
 */
import { isAlive } from "../adapters/lxc/proc.ts";
import { errorMessage } from "../lib/errors.ts";
import { defaultStateDir } from "../lib/paths.ts";
import { readServerInfo } from "../lib/state_dir_lock.ts";
import { parseCommandLine } from "../lib/command_line.ts";
import { type Output, table } from "./output.ts";
import { replayUsage } from "./replay.ts";

interface DriftItem {
  kind: string;
  subject: string;
  detail: string;
}

export async function runDrift(args: string[], out: Output): Promise<number> {
  let line;
  try {
    line = parseCommandLine(args, {
      drift: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      "state-dir": { type: "string" },
      http: { type: "string" },
    });
  } catch (error) {
    out.error(`pve-cri replay: ${(error as Error).message}`);
    return 2;
  }
  if (line.help) {
    out.line(replayUsage);
    return 0;
  }
  if (line.positionals.length > 0) {
    out.error(`pve-cri replay: --drift takes no stream, got "${line.positionals[0]}"`);
    return 2;
  }
  const { values } = line;
  const stateDir = values["state-dir"] ?? defaultStateDir();
  const server = readServerInfo(stateDir);
  const url = values.http ?? server?.http;
  if (url === undefined) {
    out.error(
      server === undefined || !isAlive(server.pid)
        ? `pve-cri replay: --drift asks the server of ${stateDir}, and none runs: start it ` +
          `with --http (its startup reconciliation logs what differs), or pass --http URL`
        : `pve-cri replay: the server of ${stateDir} (pid ${server.pid}) serves no --http ` +
          `endpoint: restart it with --http, or pass --http URL`,
    );
    return 2;
  }
  let drift: DriftItem[];
  try {
    const response = await fetch(`${url.replace(/\/+$/, "")}/v1/drift`, {
      signal: AbortSignal.timeout(60_000),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body?.error ?? `HTTP ${response.status}`);
    drift = body.drift;
  } catch (error) {
    out.error(`pve-cri replay: ${url}/v1/drift: ${errorMessage(error)}`);
    return 2;
  }
  if (values.json) out.line(JSON.stringify({ drift }));
  else if (drift.length === 0) out.line("no drift");
  else {
    out.line(table(["KIND", "SUBJECT", "DETAIL"], drift.map((d) => [d.kind, d.subject, d.detail])));
  }
  return drift.length === 0 ? 0 : 1;
}
