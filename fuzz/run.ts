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
  grpcStatus,
  H2Client,
  type Response,
} from "../tests/_support/h2_client.ts";
import { connect } from "../tests/_support/cri_client.ts";
import { Random } from "../tests/_support/random.ts";
import { statusKb } from "../tests/_support/proc_status.ts";
import { type ServerProcess, startServer } from "../tests/_support/server_process.ts";
import { fuzzMethods, fuzzRequest } from "./cri_requests.ts";
import { inspectorUrl, V8Inspector } from "./v8_inspector.ts";

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
  /**
   * The server's RSS: `baseline` after a warm-up share of the calls, their pods and containers
   * removed and a full garbage collection; `peak` during the calls; `end` right after them;
   * `settled` after the same cleanup and collection as the baseline.
   */
  rssKb: { baseline: number; peak: number; end: number; settled: number };
  /** The JS heap in use, ArrayBuffer contents included, at the same two points. */
  heapKb: { baseline: number; settled: number };
  /** RSS and heap `settled` within TOLERANCE of `baseline`: the calls left nothing behind. */
  rssReturned: boolean;
  heapReturned: boolean;
}

const DEADLINE_MS = 2_000;
const GRACE_MS = 3_000;
const INITIAL_WINDOW_SIZE = 0x4;
/** Calls before the baseline (at most half of the run). */
const WARM_UP_CALLS = 10_000;
/**
 * How far above its baseline settled memory may be. The JS heap is the leak detector; RSS also
 * holds malloc's heap, which after large fuzzed messages keeps a high-water mark that moves
 * with them (measured: 53-63 MB of it between rounds of 10,000 calls, while 240,000 Version
 * calls leave it flat at 16 MB).
 */
const TOLERANCE = { heap: 0.1, rss: 0.2 };

export async function runFuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const stateDir = `${options.dir}/state`;
  const server = await startServer({
    dir: options.dir,
    stateDir,
    timeoutMs: 60_000,
    denoFlags: ["--inspect=127.0.0.1:0"],
  });
  const begun = performance.now();
  const pid = server.child.pid;
  let crashed = false;
  void server.child.status.then(() => crashed = true);
  const summary: FuzzSummary = {
    seed: options.seed,
    calls: 0,
    seconds: 0,
    statuses: {},
    crashes: 0,
    hangs: 0,
    verify: "",
    rssKb: { baseline: 0, peak: 0, end: 0, settled: 0 },
    heapKb: { baseline: 0, settled: 0 },
    rssReturned: false,
    heapReturned: false,
  };
  let inspector: V8Inspector | undefined;
  try {
    inspector = await V8Inspector.connect(await serverInspectorUrl(server));
    const started = performance.now();
    const run: FuzzPhase = {
      options,
      socket: server.socket,
      pid,
      inspector,
      summary,
      crashed: () => crashed,
      overdue: () => (performance.now() - started) / 1000 > options.maxSeconds,
    };
    // The baseline is the server after the first share of the calls, their pods and containers
    // removed and its garbage collected: code compiled, heap and store at their working size.
    // The rest of the calls, cleaned up the same way, must leave it there.
    const warmUp = Math.min(WARM_UP_CALLS, Math.floor(options.calls / 2));
    await sendCalls(run, warmUp);
    const baseline = await idleMemory(run);
    // Then in rounds of the same size, each cleaned up after, as a node's pods come and go.
    const round = Math.max(warmUp, 1);
    for (let upTo = warmUp + round; summary.calls < options.calls; upTo += round) {
      await sendCalls(run, Math.min(upTo, options.calls));
      if (summary.calls >= options.calls || run.crashed() || run.overdue()) break;
      await removeAll(server.socket);
    }
    summary.rssKb.end = rssKb(pid);
    summary.rssKb.peak = Math.max(summary.rssKb.peak, summary.rssKb.end);
    const settled = await idleMemory(run);
    summary.rssKb = { ...summary.rssKb, baseline: baseline.rssKb, settled: settled.rssKb };
    summary.heapKb = { baseline: baseline.heapKb, settled: settled.heapKb };
    const returned = (end: number, start: number, tolerance: number) =>
      !crashed && end <= Math.round(start * (1 + tolerance));
    summary.rssReturned = returned(settled.rssKb, baseline.rssKb, TOLERANCE.rss);
    summary.heapReturned = returned(settled.heapKb, baseline.heapKb, TOLERANCE.heap);
  } finally {
    summary.seconds = Math.round((performance.now() - begun) / 100) / 10;
    inspector?.close();
    if (crashed) summary.crashes = 1;
    else {
      const out = bufferOutput();
      summary.verify = runReplay(["--verify", "--state-dir", stateDir], out) === 0
        ? "clean"
        : (out.stdout[0] ?? out.stderr[0] ?? "failed");
    }
    await server.stop("SIGTERM");
  }
  return summary;
}

/** What the phases of one run share. */
interface FuzzPhase {
  options: FuzzOptions;
  socket: string;
  pid: number;
  inspector: V8Inspector;
  summary: FuzzSummary;
  crashed(): boolean;
  overdue(): boolean;
}

/** Sends calls on `connections` connections until `summary.calls` reaches `upTo`. */
async function sendCalls(run: FuzzPhase, upTo: number): Promise<void> {
  const { options, summary } = run;
  const methods = fuzzMethods();
  const firstCall = summary.calls;
  await Promise.all(Array.from({ length: options.connections }, async (_, worker) => {
    const random = new Random(options.seed * 1000 + firstCall + worker);
    let h2 = await openConnection(run.socket);
    let streamId = 1;
    while (summary.calls < upTo && !run.overdue() && !run.crashed()) {
      summary.calls++;
      if (summary.calls % 200 === 0) {
        summary.rssKb.peak = Math.max(summary.rssKb.peak, rssKb(run.pid));
      }
      const method = random.pick(methods);
      const deadline = method.responseStream ? 500 : DEADLINE_MS;
      const outcome = await call(h2, streamId, method.path, fuzzRequest(random, method), deadline);
      streamId += 2;
      count(summary.statuses, outcome);
      if (outcome === "hang") summary.hangs++;
      // A connection the server ended (or that ran out of ids) is replaced.
      if (outcome === "hang" || outcome === "gone" || streamId > 2 ** 30) {
        await h2[Symbol.asyncDispose]();
        if (run.crashed()) return;
        h2 = await openConnection(run.socket);
        streamId = 1;
      }
    }
    await h2[Symbol.asyncDispose]();
  }));
}

/**
 * The server's memory with the calls' pods and containers removed and its garbage collected;
 * zeros once it has crashed.
 */
async function idleMemory(run: FuzzPhase): Promise<{ rssKb: number; heapKb: number }> {
  try {
    await removeAll(run.socket);
    await run.inspector.collectGarbage();
    return { rssKb: rssKb(run.pid), heapKb: Math.round(await run.inspector.heapUsed() / 1024) };
  } catch (error) {
    if (run.crashed()) return { rssKb: 0, heapKb: 0 };
    throw error;
  }
}

/** The server's inspector URL, from its stderr (Deno prints it before the serving line). */
async function serverInspectorUrl(server: ServerProcess): Promise<string> {
  for (let tries = 0; tries < 500; tries++) {
    const url = inspectorUrl(server.stderr());
    if (url !== undefined) return url;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`The fuzzed server printed no inspector URL: ${server.stderr().slice(0, 500)}`);
}

/** Removes every container and pod the calls created, as a kubelet would. */
async function removeAll(socket: string): Promise<void> {
  const cri = await connect(socket, { timeoutMs: 10_000 });
  try {
    const options = { deadlineMs: 10_000 };
    const { containers = [] } = await cri.runtime.ListContainers({}, options);
    for (const { id } of containers as { id: string }[]) {
      await cri.runtime.RemoveContainer({ container_id: id }, options);
    }
    const { items = [] } = await cri.runtime.ListPodSandbox({}, options);
    for (const { id } of items as { id: string }[]) {
      await cri.runtime.StopPodSandbox({ pod_sandbox_id: id }, options);
      await cri.runtime.RemovePodSandbox({ pod_sandbox_id: id }, options);
    }
    // And lists again, as the kubelet's relist would: the list caches keep the last answer.
    await cri.runtime.ListContainers({}, options);
    await cri.runtime.ListPodSandbox({}, options);
  } finally {
    cri.close();
  }
}

/**
 * A connection that reads like a client's HTTP/2 layer would: stream windows the largest
 * allowed, the connection's raised at once and given back after each response (see `call`),
 * so that a large or long answer is never held up by the fuzzer itself.
 */
async function openConnection(socket: string): Promise<H2Client> {
  const h2 = await H2Client.connect(socket, { settings: [[INITIAL_WINDOW_SIZE, 2 ** 31 - 1]] });
  h2.windowUpdate(0, 2 ** 30);
  return h2;
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
  // Give the connection window back for what was read.
  const read = response.frames.reduce(
    (n, f) => n + (f.type === FRAME.DATA ? f.payload.length : 0),
    0,
  );
  if (read > 0) h2.windowUpdate(0, read);
  if (response.rstCode !== undefined) return `rst:${response.rstCode}`;
  return grpcStatus(response) ?? "no-status";
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
