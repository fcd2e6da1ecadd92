/**
 * The container process model (see the README, "How a container runs"): the CT's init is an
 * idle `catatonit -P` bound in from the host; the app runs beside it, started by
 * `lxc-attach` under a per-container `conmon` on the host. conmon writes the CRI log (streams
 * apart, partial lines marked), records the exit code in an exit file and runs an exit
 * command that stops the CT — all without pve-cri, which may be stopped, killed or upgraded
 * meanwhile. conmon's "runtime" is a few lines of Perl (perl-base is Essential on Debian and
 * PVE): it starts lxc-attach, writes its pid and returns, as `runc create` would.
 */
import { join } from "node:path";
import { FailedPreconditionError, InternalError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { LxcTools } from "../lxc/lxc_tools.ts";
import { type DiskUsage, diskUsage } from "./disk_usage.ts";
import { childrenOf, commandName, isAlive, processStartTime, processTree } from "../lxc/proc.ts";
import { cgroupOf, cgroupUsage, oomEventsFile } from "./cgroups.ts";
import { addIncludeLine, helperDir, writeIncludeFile } from "./ct_include.ts";
import type {
  CtSetup,
  CtUsage,
  ExecRequest,
  ExecResult,
  ExitStatus,
  ProcessSpec,
  ProcessSupervisor,
} from "./mod.ts";
import { podFilesIn } from "./pod_files.ts";
import { removeTree } from "../../lib/files.ts";
import { findExecutable, resolveUser, UserError } from "./root_paths.ts";

/**
 * conmon calls `RUNTIME [runtime args] create --bundle B --pid-file P ID`. The runtime forks
 * lxc-attach, waits for its child to exec the app, writes the app's pid and ends lxc-attach:
 * the app passes to conmon (a subreaper), which reaps it and records its own exit status, as it
 * does runc's container process — and no lxc-attach stays behind for each container (3.4 MB of
 * RSS). lxc-attach ending first (the exec failed) or no app within 10 s: lxc-attach's pid is
 * written instead and left to conmon, which then records lxc-attach's status.
 */
const runtimeScript = [
  "my @t = splice(@ARGV, -6);",
  'die "pve-cri runtime: unexpected call: @t\\n" unless @t == 6 && $t[0] eq "create" && $t[3] eq "--pid-file";',
  'my $pid = fork() // die "fork: $!\\n";',
  'if ($pid == 0) { exec { $ARGV[0] } @ARGV; print STDERR "exec $ARGV[0]: $!\\n"; exit 127 }',
  'sub slurp { open(my $f, "<", $_[0]) or return ""; local $/; my $t = <$f>; $t // "" }',
  // lxc-attach's own forks bear its name (it re-execs itself from a memfd on the way in, so
  // it is read each time); the app is the child that exec'd something else.
  "my ($app, $until) = (0, time + 10);",
  'while (!$app && time < $until && slurp("/proc/$pid/stat") =~ /.*\\) [^ZX] /) {',
  '  my $own = slurp("/proc/$pid/comm");',
  '  for my $c (split " ", slurp("/proc/$pid/task/$pid/children")) {',
  '    my $comm = slurp("/proc/$c/comm"); $app = $c if $comm ne "" && $comm ne $own }',
  "  select(undef, undef, undef, 0.0005) unless $app }",
  // lxc-attach is stopped first, so it cannot reap an app ending meanwhile and lose its status
  // (1 quick exit in 40 came out -1). The app still its child, a zombie included: it passes to
  // conmon. Already reaped: lxc-attach goes on and passes the status through, as the fallback.
  'if ($app) { kill("STOP", $pid);',
  '  select(undef, undef, undef, 0.0001) while slurp("/proc/$pid/stat") =~ /.*\\) [^TtZX] /;',
  '  if (slurp("/proc/$app/stat") =~ /.*\\) \\S (\\d+) / && $1 == $pid) {',
  '    kill("KILL", $pid); waitpid($pid, 0) }',
  '  else { kill("CONT", $pid); $app = 0 } }',
  'my $f; open($f, ">", "$t[4].tmp") or die "$t[4]: $!\\n"; print $f ($app || $pid);',
  'close($f) or die "$!\\n"; rename("$t[4].tmp", $t[4]) or die "$!\\n"; exit 0;',
].join(" ");

/**
 * conmon's exit command: reads the CT's OOM kill count (its cgroup goes with the CT), stops the
 * CT, and only then writes the count: an exit pve-cri collects is one whose CT is stopped, so
 * Proxmox shows it stopped and a RemoveContainer never races the stop. Args: out file, oom
 * events file, stop argv.
 */
const exitScript = [
  "my ($out, $events) = splice(@ARGV, 0, 2); my $n = 0;",
  'if (open(my $e, "<", $events)) { local $/; my $t = <$e>; $n = $1 if $t =~ /^oom_kill (\\d+)/m; }',
  "system { $ARGV[0] } @ARGV;",
  'my $o; open($o, ">", "$out.tmp") and print $o "$n\\n" and close($o) and rename("$out.tmp", $out);',
].join(" ");

export interface ConmonSupervisorOptions {
  /** pve-cri's own directory on the node for containers (include files, monitor state). */
  dir: string;
  /** The pods' directory (pod files by sandbox id). */
  podDir(sandboxId: string): string;
  lxc: LxcTools;
  /** Where the CTs' PVE configs are (`/etc/pve/lxc` on a node). */
  pveConfigDir: string;
  log: Logger;
  conmon?: string;
  catatonit?: string;
  /** A static shell for working dirs (busybox-static), bound in when present. */
  staticShell?: string;
}

interface ContainerRecord {
  vmid: number;
  logPath: string;
}

const maxExecOutput = 16 * 1024 * 1024;

export class ConmonSupervisor implements ProcessSupervisor {
  readonly #o: ConmonSupervisorOptions;
  readonly #disk = new Map<string, { at: number; usage: DiskUsage }>();
  readonly #conmon: string;
  readonly #helpers: Record<string, string>;
  readonly #listeners = new Set<(id: string, exit: ExitStatus) => void>();
  readonly #reported = new Set<string>();
  #watcher: Deno.FsWatcher | undefined;

  constructor(options: ConmonSupervisorOptions) {
    this.#o = options;
    this.#conmon = options.conmon ?? "/usr/bin/conmon";
    this.#helpers = { init: options.catatonit ?? "/usr/bin/catatonit" };
    const shell = options.staticShell ?? "/bin/busybox";
    if (isStaticBusybox(shell)) this.#helpers.sh = shell;
    for (const sub of ["exits", "exited", "includes"]) {
      Deno.mkdirSync(join(options.dir, sub), { recursive: true, mode: 0o700 });
    }
  }

  /** What is missing on this node for real containers (Debian package names). */
  static missing(options: { conmon?: string; catatonit?: string } = {}): string[] {
    const out: string[] = [];
    if (!exists(options.conmon ?? "/usr/bin/conmon")) out.push("conmon");
    if (!exists(options.catatonit ?? "/usr/bin/catatonit")) out.push("catatonit");
    if (!exists("/usr/bin/perl")) out.push("perl-base");
    return out;
  }

  #dirOf(id: string): string {
    return join(this.#o.dir, "containers", id);
  }

  prepareCt(setup: CtSetup): Promise<{ includeFile: string; mounts: number }> {
    // Flat, not in the container's directory: one inode fewer on the create path.
    const includeFile = join(this.#o.dir, "includes", `${setup.containerId}.conf`);
    const mounts = writeIncludeFile(includeFile, {
      init: `/${helperDir}/init -P`,
      namespaces: setup.namespaces,
      mounts: setup.mounts,
      podFiles: podFilesIn(this.#o.podDir(setup.sandboxId)),
      helpers: this.#helpers,
    });
    addIncludeLine(this.#o.pveConfigDir, setup.vmid, includeFile);
    return Promise.resolve({ includeFile, mounts });
  }

  async start(spec: ProcessSpec): Promise<{ pid: number; startedAt: number }> {
    const name = String(spec.vmid);
    const info = await this.#o.lxc.info(name);
    if (info.state !== "RUNNING" || info.pid === undefined) {
      throw new FailedPreconditionError(`CT ${spec.vmid} is not running`);
    }
    // A start resumed after a crash: the process may run (or have run) under its monitor.
    if (this.monitorAlive(spec.containerId) || this.exitOf(spec.containerId) !== undefined) {
      return await this.#started(spec.containerId);
    }
    const root = `/proc/${info.pid}/root`;
    const fail = async (message: string): Promise<never> => {
      await this.#o.lxc.kill(name);
      throw new StartError(message);
    };
    if (spec.argv.length === 0) await fail("no command specified");
    if (findExecutable(root, spec.argv[0]!, spec.env) === undefined) {
      await fail(`exec: "${spec.argv[0]}": executable file not found in $PATH`);
    }
    let ids;
    try {
      ids = resolveUser(root, spec.user);
    } catch (error) {
      if (error instanceof UserError) return await fail(error.message);
      throw error;
    }
    const dir = this.#dirOf(spec.containerId);
    const bundle = join(dir, "bundle");
    for (const stale of ["attach.pid", "conmon.pid", join("bundle", "ctl")]) {
      removeIfExists(join(dir, stale));
    }
    removeIfExists(join(this.#o.dir, "exits", spec.containerId));
    removeIfExists(join(this.#o.dir, "exited", spec.containerId));
    this.#reported.delete(spec.containerId);
    Deno.mkdirSync(bundle, { recursive: true, mode: 0o700 });
    Deno.writeTextFileSync(join(bundle, "config.json"), "{}\n");
    const record: ContainerRecord = { vmid: spec.vmid, logPath: spec.logPath };
    Deno.writeTextFileSync(join(dir, "container.json"), JSON.stringify(record));
    if (spec.logPath !== "") {
      Deno.mkdirSync(join(spec.logPath, ".."), { recursive: true, mode: 0o755 });
    }
    const cgroup = cgroupOf(info.pid);
    const attach = [
      "lxc-attach",
      "-P",
      this.#o.lxc.lxcpath,
      "-n",
      name,
      "--clear-env",
      ...spec.env.flatMap((e) => ["-v", e]),
      ...(ids.uid === 0 && ids.gid === 0 ? [] : ["-u", String(ids.uid), "-g", String(ids.gid)]),
      "--",
      ...this.#inWorkingDir(spec.workingDir, spec.argv),
    ];
    const args = [
      "--api-version",
      "1",
      "-u",
      spec.containerId,
      "-c",
      spec.containerId,
      "-n",
      `pve-cri-${spec.containerId.slice(0, 12)}`,
      "-r",
      "/usr/bin/perl",
      ...["-e", runtimeScript, ...attach].flatMap((a) => ["--runtime-arg", a]),
      "-b",
      bundle,
      "-p",
      join(dir, "attach.pid"),
      "--conmon-pidfile",
      join(dir, "conmon.pid"),
      // No CRI log path (crictl without one): the output still goes somewhere readable.
      "-l",
      `k8s-file:${spec.logPath === "" ? join(dir, "output.log") : spec.logPath}`,
      "--exit-dir",
      join(this.#o.dir, "exits"),
      "--full-attach",
      "--socket-dir-path",
      bundle,
      "--exit-command",
      "/usr/bin/perl",
      ...[
        "-e",
        exitScript,
        join(this.#o.dir, "exited", spec.containerId),
        (cgroup === undefined ? undefined : oomEventsFile(cgroup)) ?? "/dev/null",
        "lxc-stop",
        "-P",
        this.#o.lxc.lxcpath,
        "-n",
        name,
        "-k",
      ].flatMap((a) => ["--exit-command-arg", a]),
      "--log-level",
      "error",
    ];
    const launched = await new Deno.Command(this.#conmon, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      cwd: "/",
    }).output();
    if (launched.code !== 0) {
      const text = new TextDecoder().decode(launched.stderr).trim();
      throw new InternalError(`conmon for container ${spec.containerId} failed: ${text}`);
    }
    return await this.#started(spec.containerId);
  }

  /** The runtime writes the app's pid; an exit file first means it could not start. */
  async #started(containerId: string): Promise<{ pid: number; startedAt: number }> {
    const pidFile = join(this.#dirOf(containerId), "attach.pid");
    const began = Date.now();
    const deadline = began + 10_000;
    // Every ms while it is young: the pid file is there ~2 ms after conmon's launch.
    for (let wait = 1;; wait = Date.now() - began < 50 ? 1 : Math.min(wait * 2, 20)) {
      const pid = Number(readText(pidFile));
      if (pid > 0) {
        const startedAt = processStartTime(pid) ?? Deno.statSync(pidFile).mtime?.getTime() ??
          Date.now();
        return { pid: isAlive(pid) ? await this.#appOf(pid) ?? pid : pid, startedAt };
      }
      const exit = this.exitOf(containerId);
      if (exit !== undefined) throw new StartError(`process exited at start (${exit.exitCode})`);
      if (Date.now() > deadline) {
        throw new InternalError(`container ${containerId}: conmon did not start the process`);
      }
      await sleep(wait);
    }
  }

  /** A working dir other than / needs a chdir in the CT: lxc-attach has no option for it. */
  #inWorkingDir(workingDir: string, argv: string[]): string[] {
    if (workingDir === "" || workingDir === "/") return argv;
    if (this.#helpers.sh === undefined) {
      throw new FailedPreconditionError(
        `working dir ${workingDir} needs busybox-static on the node (apt-get install busybox-static)`,
      );
    }
    return [`/${helperDir}/sh`, "-c", 'cd -- "$0" && exec "$@"', workingDir, ...argv];
  }

  /**
   * The app, from the pid the runtime wrote: the app's own, or lxc-attach's (the runtime's
   * fallback, or a container started by a pve-cri before it), whose child the app is, there a
   * few ms after lxc-attach; undefined when lxc-attach has none.
   */
  async #appOf(pid: number, waitMs = 1000): Promise<number | undefined> {
    if (!runsLxcAttach(pid)) return pid;
    const attachPid = pid;
    const until = Date.now() + waitMs;
    for (;;) {
      // lxc-attach (run from a memfd: `memfd:lxc-attac`) forks a short-lived copy of itself
      // on the way in: the app is the child that exec'd something else.
      const attach = commandName(attachPid);
      const child = childrenOf(attachPid).find((pid) => {
        const name = commandName(pid);
        return name !== undefined && name !== attach && isAlive(pid);
      });
      if (child !== undefined) return child;
      if (!isAlive(attachPid) || Date.now() > until) return undefined;
      await sleep(1);
    }
  }

  async signal(containerId: string, signal: string): Promise<void> {
    const pid = Number(readText(join(this.#dirOf(containerId), "attach.pid")));
    if (!(pid > 0) || !isAlive(pid)) return;
    // Never lxc-attach itself: it does not forward signals, and would record a false exit.
    const app = await this.#appOf(pid);
    if (app === undefined) return;
    try {
      Deno.kill(app, signalName(signal));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }

  exitOf(containerId: string): ExitStatus | undefined {
    const path = join(this.#o.dir, "exits", containerId);
    const text = readText(path);
    if (text === undefined || text.trim() === "") return undefined;
    const exitCode = Number(text.trim());
    const finishedAt = Deno.statSync(path).mtime?.getTime() ?? Date.now();
    const ooms = Number(readText(join(this.#o.dir, "exited", containerId)) ?? 0);
    const reason = ooms > 0 ? "OOMKilled" : exitCode === 0 ? "Completed" : "Error";
    return { exitCode, reason, finishedAt };
  }

  monitorAlive(containerId: string): boolean {
    const pid = Number(readText(join(this.#dirOf(containerId), "conmon.pid")));
    return pid > 0 && isAlive(pid);
  }

  async waitExit(containerId: string, abort: AbortSignal): Promise<ExitStatus> {
    for (let wait = 2;; wait = Math.min(wait * 2, 50)) {
      abort.throwIfAborted();
      if (exists(join(this.#o.dir, "exited", containerId))) return this.exitOf(containerId)!;
      const exit = this.exitOf(containerId);
      // The exit command writes its record once the CT has stopped; give it a moment.
      if (exit !== undefined && Date.now() - exit.finishedAt > 2000) return exit;
      if (exit === undefined && !this.monitorAlive(containerId)) {
        await sleep(20);
        return this.exitOf(containerId) ?? lostExit();
      }
      await sleep(wait);
    }
  }

  onExit(listener: (containerId: string, exit: ExitStatus) => void): () => void {
    this.#listeners.add(listener);
    if (this.#watcher === undefined) this.#watch();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) {
        this.#watcher?.close();
        this.#watcher = undefined;
      }
    };
  }

  #watch(): void {
    const watcher = this.#watcher = Deno.watchFs([
      join(this.#o.dir, "exits"),
      join(this.#o.dir, "exited"),
    ], { recursive: false });
    (async () => {
      for await (const event of watcher) {
        for (const path of event.paths) {
          const id = path.split("/").pop()!;
          if (id.endsWith(".tmp") || this.#reported.has(id)) continue;
          const controller = new AbortController();
          setTimeout(() => controller.abort(), 10_000);
          this.waitExit(id, controller.signal).then((exit) => {
            if (this.#reported.has(id)) return;
            this.#reported.add(id);
            for (const listener of this.#listeners) listener(id, exit);
          }, () => {});
        }
      }
    })().catch((error) => this.#o.log.warn("exit watcher ended", { error: String(error) }));
  }

  async exec(request: ExecRequest): Promise<ExecResult> {
    const name = String(request.vmid);
    const info = await this.#o.lxc.info(name);
    if (info.state !== "RUNNING" || info.pid === undefined) {
      throw new FailedPreconditionError(`CT ${request.vmid} is not running`);
    }
    const ids = resolveUser(`/proc/${info.pid}/root`, request.user);
    const child = new Deno.Command("lxc-attach", {
      args: [
        "-P",
        this.#o.lxc.lxcpath,
        "-n",
        name,
        "--clear-env",
        ...request.env.flatMap((e) => ["-v", e]),
        ...(ids.uid === 0 && ids.gid === 0 ? [] : ["-u", String(ids.uid), "-g", String(ids.gid)]),
        "--",
        ...this.#inWorkingDir(request.workingDir, request.argv),
      ],
      stdin: request.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (request.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      // A program that does not read its stdin may close it first: that is fine.
      writer.write(request.stdin).then(() => writer.close()).catch(() => {});
    }
    let timedOut = false;
    const killTree = () => {
      // lxc-attach does not forward signals: kill what runs below it, then it exits 137.
      for (const pid of processTree(child.pid).slice(1).reverse()) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    };
    const timer = request.timeoutSeconds > 0
      ? setTimeout(() => {
        timedOut = true;
        killTree();
      }, request.timeoutSeconds * 1000)
      : undefined;
    const onAbort = () => killTree();
    request.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const [stdout, stderr, status] = await Promise.all([
        boundedRead(child.stdout, maxExecOutput),
        boundedRead(child.stderr, maxExecOutput),
        child.status,
      ]);
      return { exitCode: status.code, stdout, stderr, timedOut };
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener("abort", onAbort);
    }
  }

  async initPid(vmid: number): Promise<number | undefined> {
    return (await this.#o.lxc.info(String(vmid))).pid;
  }

  bundleOf(containerId: string): string {
    return this.#dirOf(containerId);
  }

  async reopenLog(containerId: string): Promise<void> {
    const ctl = join(this.#dirOf(containerId), "bundle", "ctl");
    if (!this.monitorAlive(containerId)) {
      throw new FailedPreconditionError(`container ${containerId} is not running`);
    }
    // conmon's control FIFO: message 2 reopens the log file.
    const file = await Deno.open(ctl, { write: true });
    try {
      await file.write(new TextEncoder().encode("2 0 0\n"));
    } finally {
      file.close();
    }
  }

  async usage(vmid: number): Promise<CtUsage | undefined> {
    const info = await this.#o.lxc.info(String(vmid));
    if (info.pid === undefined) return undefined;
    const cgroup = cgroupOf(info.pid);
    if (cgroup === undefined) return undefined;
    // Where LXC (and PVE) mount a running CT's root on the host.
    const mountpoint = join(this.#o.lxc.lxcpath, String(vmid), "rootfs");
    const disk = this.#diskUsage(mountpoint);
    return {
      ...cgroupUsage(cgroup),
      ...(disk === undefined
        ? {}
        : { rootfs: { mountpoint, usedBytes: disk.bytes, inodesUsed: disk.inodes } }),
    };
  }

  /** A walk of the whole root is not free: one per CT per 10 s, as cAdvisor's fs stats. */
  #diskUsage(root: string): DiskUsage | undefined {
    const cached = this.#disk.get(root);
    if (cached !== undefined && Date.now() - cached.at < 10_000) return cached.usage;
    const usage = diskUsage(root);
    if (usage === undefined) this.#disk.delete(root);
    else this.#disk.set(root, { at: Date.now(), usage });
    return usage;
  }

  containersOnNode(): string[] {
    const ids = new Set<string>();
    for (const sub of ["containers", "includes", "exits", "exited"]) {
      try {
        for (const entry of Deno.readDirSync(join(this.#o.dir, sub))) {
          ids.add(entry.name.replace(/\.conf$/, ""));
        }
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
    return [...ids];
  }

  async release(containerId: string): Promise<void> {
    // Off the event loop: a removal runs behind RemoveContainer's answer, beside other calls.
    await Promise.all([
      removeTree(this.#dirOf(containerId)),
      removeTree(join(this.#o.dir, "includes", `${containerId}.conf`)),
      removeTree(join(this.#o.dir, "exits", containerId)),
      removeTree(join(this.#o.dir, "exited", containerId)),
    ]);
    this.#reported.delete(containerId);
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}

/**
 * Is the process lxc-attach? It runs from its memfd copy (`/memfd:lxc-attach (deleted)`), and in
 * the host's pid namespace, where an app never does.
 */
function runsLxcAttach(pid: number): boolean {
  try {
    return /^\/(memfd:|usr\/bin\/)lxc-attach\b/.test(Deno.readLinkSync(`/proc/${pid}/exe`)) &&
      Deno.readLinkSync(`/proc/${pid}/ns/pid`) === Deno.readLinkSync("/proc/self/ns/pid");
  } catch {
    return false;
  }
}

/** The process could not be started: the CRI's StartError. */
export class StartError extends FailedPreconditionError {}

function lostExit(): ExitStatus {
  return {
    exitCode: 255,
    reason: "Unknown",
    message: "the process's monitor ended without recording an exit",
    finishedAt: Date.now(),
  };
}

function signalName(signal: string): Deno.Signal {
  const name = signal.toUpperCase();
  const numbered: Record<string, string> = {
    "1": "SIGHUP",
    "2": "SIGINT",
    "3": "SIGQUIT",
    "9": "SIGKILL",
    "10": "SIGUSR1",
    "12": "SIGUSR2",
    "15": "SIGTERM",
    "30": "SIGPWR",
  };
  const full = numbered[name] ?? (name.startsWith("SIG") ? name : `SIG${name}`);
  return full as Deno.Signal;
}

async function boundedRead(stream: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of stream) {
    if (size >= max) {
      truncated = true;
      continue; // drain, so the process is not blocked on a full pipe
    }
    const part = chunk.subarray(0, max - size);
    if (part.length < chunk.length) truncated = true;
    chunks.push(part);
    size += part.length;
  }
  if (truncated) {
    chunks.push(new TextEncoder().encode(`\n[output truncated at ${max} bytes]\n`));
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A busybox that needs no loader (busybox-static): only that can be bound into any image. */
function isStaticBusybox(path: string): boolean {
  if (!exists(path) || !/busybox/.test(Deno.realPathSync(path))) return false;
  const head = new TextDecoder("latin1").decode(Deno.readFileSync(path).subarray(0, 4096));
  return !head.includes("ld-linux");
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

function removeIfExists(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
