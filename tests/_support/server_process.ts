/**
 * `deno task start` as its own process, as an operator runs it (the task's Deno and V8 flags
 * included): waits for the "serving" line, and stops it with a signal (SIGTERM for a clean
 * stop, SIGKILL for a crash).
 */
export interface ServerProcess extends AsyncDisposable {
  socket: string;
  stateDir: string;
  child: Deno.ChildProcess;
  /** Everything written to stderr so far (JSON log lines). */
  stderr(): string;
  /** Everything written to stdout so far (the serving line, the inspection URL). */
  stdout(): string;
  /** The URL of the inspection endpoint, from its stdout line (with `http`). */
  inspectionUrl(): Promise<string>;
  /** Sends a signal and waits for the exit; returns the exit status and how long it took. */
  stop(signal?: Deno.Signal): Promise<{ code: number; ms: number }>;
}

const repository = new URL("../../", import.meta.url);

/**
 * The `deno` arguments of deno.json's `start` task, with `main.ts` made absolute: spawned
 * directly rather than through `deno task`, so that signals reach the server itself.
 */
export function startTaskArgs(denoFlags: string[] = []): string[] {
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", repository)));
  const [deno, ...args] = String(config.tasks?.start ?? "").split(/\s+/);
  if (deno !== "deno" || !args.includes("main.ts")) {
    throw new Error(`deno.json's start task is not "deno … main.ts …": ${config.tasks?.start}`);
  }
  const main = args.indexOf("main.ts");
  return [...args.slice(0, main), ...denoFlags, new URL("main.ts", repository).pathname]
    .concat(args.slice(main + 1));
}

export async function startServer(options: {
  dir: string;
  stateDir?: string;
  backend?: string;
  config?: string;
  http?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Deno flags before main.ts, after the task's own (`--inspect=…`). */
  denoFlags?: string[];
  /**
   * Serve `--backend proxmox` with the node and CNI stand-ins (fake_node_server.ts): for
   * tests of the CRI surface and Proxmox calls, where no process runs.
   */
  fakeNode?: boolean;
}): Promise<ServerProcess> {
  const socket = `${options.dir}/cri.sock`;
  const stateDir = options.stateDir ?? `${options.dir}/state`;
  const args = options.fakeNode
    ? [
      "run",
      "--allow-all",
      new URL("fake_node_server.ts", import.meta.url).pathname,
      socket,
      stateDir,
      options.config ?? "",
    ]
    : [
      ...startTaskArgs(options.denoFlags),
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
  if (out.split("\n")[0] !== expected) throw new Error(`unexpected first line: ${out}`);
  const drain = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      out += value;
    }
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
    stdout: () => out,
    async inspectionUrl() {
      for (;;) {
        const url = /^pve-cri state inspection on (\S+)$/m.exec(out)?.[1];
        if (url !== undefined) return url;
        if (stopped !== undefined) throw new Error("pve-cri stopped without an inspection URL");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    stop,
    async [Symbol.asyncDispose]() {
      await stop("SIGKILL");
    },
  };
}
