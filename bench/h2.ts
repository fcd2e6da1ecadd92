/**
 * The front door under attack and at rest, against `deno task start` in its own process:
 * `h2.rapid_reset_cpu` — the server's CPU seconds for a client sending 100,000
 * HEADERS+RST_STREAM pairs (it stops when the server cuts it off, as its limit makes it);
 * `h2.conn_memory_kb` — the server's resident memory per idle connection, over 100 of them.
 */
import { FRAME, grpcMessage, grpcRequestHeaders, H2Client } from "../tests/_support/h2_client.ts";
import { statusKb } from "../tests/_support/proc_status.ts";
import { startServer } from "../tests/_support/server_process.ts";
import { tempDir } from "../tests/_support/temp_dir.ts";
import { type BenchContext, type Benchmark, round } from "./bench.ts";

/** User + system CPU seconds of a process so far (/proc/PID/stat, in clock ticks). */
function cpuSeconds(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const rssKb = (pid: number) => statusKb(pid, "VmRSS");

async function rapidReset(context: BenchContext) {
  using dir = tempDir("pve-cri-bench-h2-");
  await using server = await startServer({ dir: dir.path });
  const pid = server.child.pid;
  const path = "/runtime.v1.RuntimeService/Version";
  const pairs = 100_000;
  const before = cpuSeconds(pid);
  await using h2 = await H2Client.connect(server.socket);
  let sent = 0;
  for (; sent < pairs && !h2.ended; sent++) {
    const id = 1 + 2 * sent;
    h2.headers(id, grpcRequestHeaders(path));
    h2.data(id, grpcMessage(new Uint8Array(0)));
    h2.rstStream(id, 8);
    if (sent % 500 === 499) await h2.flushed();
  }
  await h2.closedByServer(30_000);
  const cut = h2.drain().some((f) => f.type === FRAME.GOAWAY);
  context.emit({
    bench: "h2.rapid_reset_cpu",
    value: round(cpuSeconds(pid) - before, 3),
    unit: "s",
    pairs_offered: pairs,
    pairs_sent_before_cut: sent,
    cut_off: cut,
    target: "< 0.5",
  });
}

async function connectionMemory(context: BenchContext) {
  using dir = tempDir("pve-cri-bench-h2-");
  await using server = await startServer({ dir: dir.path });
  const pid = server.child.pid;
  const count = 100;
  const settle = () => new Promise((resolve) => setTimeout(resolve, 500));
  const open = async (clients: H2Client[], n: number) => {
    for (let i = 0; i < n; i++) {
      const h2 = await H2Client.connect(server.socket);
      await h2.until((f) => f.type === FRAME.SETTINGS);
      clients.push(h2);
    }
  };
  const clients: H2Client[] = [];
  try {
    // One-time costs out of the way first: the store's checkpointer starting, and the
    // connection code compiled on its first uses.
    await open(clients, 10);
    for (const h2 of clients.splice(0)) await h2[Symbol.asyncDispose]();
    await settle();
    await settle();
    const before = rssKb(pid);
    await open(clients, count);
    await settle();
    const after = rssKb(pid);
    context.emit({
      bench: "h2.conn_memory_kb",
      value: round((after - before) / count, 1),
      unit: "KB",
      connections: count,
      target: "≤ 64",
    });
  } finally {
    for (const h2 of clients) await h2[Symbol.asyncDispose]();
  }
}

export const benchmarks: Benchmark[] = [
  { results: ["h2.rapid_reset_cpu"], run: rapidReset },
  { results: ["h2.conn_memory_kb"], run: connectionMemory },
];
