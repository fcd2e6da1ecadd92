/**
 * One fuzzing run: `deno task start` (memory backend) in its own process, several raw HTTP/2
 * connections sending generated CRI requests (fuzz/cri_requests.ts) with a deadline, and the
 * checks that matter: every call gets a status within its deadline, the server stays up,
 * `replay --verify` is clean afterwards, and how its memory went.
 */
import { bufferOutput } from "../cli/output.ts";
import { runReplay } from "../cli/replay.ts";
import {
  encodeFrame,
  FLAG,
  FRAME,
  grpcRequestHeaders,
  H2Client,
  type Response,
} from "../tests/_support/h2_client.ts";
import { Random } from "../tests/_support/random.ts";
import { statusKb } from "../tests/_support/proc_status.ts";
import { startServer } from "../tests/_support/server_process.ts";
import { fuzzMethods, fuzzRequest } from "./cri_requests.ts";

export interface FuzzOptions {
  /** Calls to make (the run also stops at `maxSeconds`). */
  calls: number;
  seed: number;
  maxSeconds: number;
  /** Connections sending at once. */
  connections: number;
  /** A scratch directory for the server's socket and state. */
  dir: string;
}

export interface FuzzSummary {
  seed: number;
  calls: number;
  seconds: number;
  /** gRPC status codes answered, by code; `rst:N` for a stream reset with HTTP/2 code N. */
  statuses: Record<string, number>;
  /** The server process ended. */
  crashes: number;
  /** Calls with no answer within their deadline and a grace of 3 s. */
  hangs: number;
  /** `replay --verify` afterwards: "clean", or its first line. */
  verify: string;
  rssKb: { baseline: number; peak: number; end: number };
}

const DEADLINE_MS = 2_000;
const GRACE_MS = 3_000;

export async function runFuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const stateDir = `${options.dir}/state`;
  const server = await startServer({ dir: options.dir, stateDir, timeoutMs: 60_000 });
  const pid = server.child.pid;
  let crashed = false;
  void server.child.status.then(() => crashed = true);
  const methods = fuzzMethods();
  const summary: FuzzSummary = {
    seed: options.seed,
    calls: 0,
    seconds: 0,
    statuses: {},
    crashes: 0,
    hangs: 0,
    verify: "",
    rssKb: { baseline: rssKb(pid), peak: 0, end: 0 },
  };
  const started = performance.now();
  const overdue = () => (performance.now() - started) / 1000 > options.maxSeconds;
  try {
    await Promise.all(Array.from({ length: options.connections }, async (_, worker) => {
      const random = new Random(options.seed * 1000 + worker);
      let h2 = await H2Client.connect(server.socket);
      let streamId = 1;
      while (summary.calls < options.calls && !overdue() && !crashed) {
        summary.calls++;
        if (summary.calls % 200 === 0) {
          summary.rssKb.peak = Math.max(summary.rssKb.peak, rssKb(pid));
        }
        const method = random.pick(methods);
        const deadline = method.responseStream ? 500 : DEADLINE_MS;
        const outcome = await call(
          h2,
          streamId,
          method.path,
          fuzzRequest(random, method),
          deadline,
        );
        streamId += 2;
        count(summary.statuses, outcome);
        if (outcome === "hang") summary.hangs++;
        // A connection the server ended (or that ran out of ids) is replaced.
        if (outcome === "hang" || outcome === "gone" || streamId > 2 ** 30) {
          await h2[Symbol.asyncDispose]();
          if (crashed) break;
          h2 = await H2Client.connect(server.socket);
          streamId = 1;
        }
      }
      await h2[Symbol.asyncDispose]();
    }));
  } finally {
    summary.seconds = Math.round((performance.now() - started) / 100) / 10;
    if (crashed) summary.crashes = 1;
    else {
      summary.rssKb.end = rssKb(pid);
      summary.rssKb.peak = Math.max(summary.rssKb.peak, summary.rssKb.end);
      const out = bufferOutput();
      summary.verify = runReplay(["--verify", "--state-dir", stateDir], out) === 0
        ? "clean"
        : (out.stdout[0] ?? out.stderr[0] ?? "failed");
    }
    await server.stop("SIGTERM");
  }
  return summary;
}

/** One call: its status code, `rst:N`, `hang` or `gone` (the connection ended). */
async function call(
  h2: H2Client,
  streamId: number,
  path: string,
  message: Uint8Array,
  deadlineMs: number,
): Promise<string> {
  h2.headers(streamId, grpcRequestHeaders(path, [["grpc-timeout", `${deadlineMs}m`]]));
  sendMessage(h2, streamId, message);
  let response: Response;
  try {
    response = await h2.response(streamId, deadlineMs + GRACE_MS);
  } catch (error) {
    return /Connection ended/.test(String(error)) ? "gone" : "hang";
  }
  if (response.rstCode !== undefined) return `rst:${response.rstCode}`;
  const fields = response.trailers ?? response.headers;
  return fields.find(([name]) => name === "grpc-status")?.[1] ?? "no-status";
}

/** A gRPC message in DATA frames of at most 16 KiB, the last with END_STREAM. */
function sendMessage(h2: H2Client, streamId: number, message: Uint8Array): void {
  const body = new Uint8Array(5 + message.length);
  new DataView(body.buffer).setUint32(1, message.length);
  body.set(message, 5);
  for (let offset = 0; offset < body.length; offset += 16_384) {
    const last = offset + 16_384 >= body.length;
    h2.send(encodeFrame(
      FRAME.DATA,
      last ? FLAG.END_STREAM : 0,
      streamId,
      body.subarray(offset, offset + 16_384),
    ));
  }
}

function count(statuses: Record<string, number>, outcome: string): void {
  statuses[outcome] = (statuses[outcome] ?? 0) + 1;
}

function rssKb(pid: number): number {
  return statusKb(pid, "VmRSS");
}
