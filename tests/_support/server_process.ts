/**
 * `main.ts start` as its own process, as an operator runs it: waits for the "serving" line,
 * and stops it with a signal (SIGTERM for a clean stop, SIGKILL for a crash).
 */
export interface ServerProcess extends AsyncDisposable {
  socket: string;
  stateDir: string;
  child: Deno.ChildProcess;
  /** Everything written to stderr so far (JSON log lines). */
  stderr(): string;
  /** Sends a signal and waits for the exit; returns the exit status and how long it took. */
  stop(signal?: Deno.Signal): Promise<{ code: number; ms: number }>;
}

const main = new URL("../../main.ts", import.meta.url).pathname;

export async function startServer(options: {
  dir: string;
  stateDir?: string;
  backend?: string;
  config?: string;
  http?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}): Promise<ServerProcess> {
  const socket = `${options.dir}/cri.sock`;
  const stateDir = options.stateDir ?? `${options.dir}/state`;
  const args = [
    "run",
    "--allow-all",
    main,
    "start",
    "--socket",
    socket,
    "--state-dir",
    stateDir,
    "--http",
    options.http ?? "off",
    "--backend",
    options.backend ?? "memory",
    ...(options.config === undefined ? [] : ["--config", options.config]),
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
    env: { PVE_CRI_LOG: "info", ...options.env },
  }).spawn();
  let err = "";
  const errDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (err += chunk) }),
  ).catch(() => {});
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
  try {
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`pve-cri exited before serving: ${err}`);
      out += value;
    }
  } finally {
    clearTimeout(timer);
  }
  const expected = `pve-cri serving CRI on unix://${socket} (backend ${
    options.backend ?? "memory"
  })`;
  if (out.trim() !== expected) throw new Error(`unexpected first line: ${out}`);
  const drain = (async () => {
    while (!(await reader.read()).done) { /* keep stdout flowing */ }
  })().catch(() => {});
  let stopped: Promise<{ code: number; ms: number }> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    stopped ??= (async () => {
      const start = performance.now();
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      const status = await child.status;
      await Promise.all([drain, errDone]);
      return { code: status.code, ms: performance.now() - start };
    })();
    return stopped;
  };
  return {
    socket,
    stateDir,
    child,
    stderr: () => err,
    stop,
    async [Symbol.asyncDispose]() {
      await stop("SIGKILL");
    },
  };
}
