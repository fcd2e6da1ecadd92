/**
 * LXC's command socket, spoken to directly: the socket's name as LXC makes it, the answers read
 * as LXC writes them (a stand-in monitor), and, with a real container (root), the state and
 * init pid its monitor gives, checked against lxc-info.
 */
import assert from "node:assert/strict";
import {
  commandSocket,
  CommandSocketError,
  queryMonitor,
} from "../../../adapters/lxc/command_socket.ts";
import { lxcConfigText } from "../../../adapters/lxc/lxc_config.ts";
import { LxcTools, missingLxcTools } from "../../../adapters/lxc/lxc_tools.ts";
import { runTool } from "../../../adapters/node/run_tool.ts";
import { busyboxPath } from "../../_support/oci_images.ts";
import { tempDir } from "../../_support/temp_dir.ts";

// Names read from /proc/net/unix beside LXC 5.0.2's running containers on this machine.
Deno.test("a container's command socket is named as LXC names it, hashed once the name is too long", () => {
  const lxcpath = (n: number) => `/tmp/explxc/${"l".repeat(n)}`;
  assert.equal(
    commandSocket(lxcpath(78), "999002"),
    `\0${lxcpath(78)}/999002/command`,
    "105 bytes: as it is",
  );
  assert.equal(commandSocket(lxcpath(79), "999002"), "\0lxc/8ccf116e9292a025/command", "106");
  assert.equal(commandSocket(lxcpath(80), "999002"), "\0lxc/f84f3398a9829e0b/command");
  assert.equal(commandSocket(lxcpath(90), "999002"), "\0lxc/c7674b4218021beb/command");
});

/**
 * A stand-in monitor on an abstract socket of the test's own: answers each request with what
 * `answer` makes of its command number (undefined: closes without a word).
 */
function fakeMonitor(answer: (command: number) => Uint8Array | undefined) {
  const path = `\0pve-cri-test-monitor-${crypto.randomUUID()}`;
  const listener = Deno.listen({ transport: "unix", path });
  const served = (async () => {
    for await (const conn of listener) {
      const request = new Uint8Array(16);
      let got = 0;
      while (got < 16) {
        const n = await conn.read(request.subarray(got));
        if (n === null) break;
        got += n;
      }
      const reply = answer(new DataView(request.buffer).getInt32(0, true));
      if (reply !== undefined) await conn.write(reply);
      conn.close();
    }
  })();
  return {
    path,
    async [Symbol.asyncDispose]() {
      listener.close();
      await served.catch(() => {});
    },
  };
}

/** LXC's answer: `{int ret; int datalen; void *data}` with the value in `data`. */
function reply(value: number, ret = 0, datalen = 0): Uint8Array {
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  view.setInt32(0, ret, true);
  view.setInt32(4, datalen, true);
  view.setBigInt64(8, BigInt(value), true);
  return out;
}

Deno.test("the monitor's answers: state and pid read from where LXC puts them; any other shape is refused", async () => {
  {
    // GET_STATE (3) → RUNNING (2); GET_INIT_PID (4) → a live process (this one).
    await using monitor = fakeMonitor((c) => reply(c === 3 ? 2 : Deno.pid));
    assert.deepEqual(await queryMonitor(monitor.path), { state: "RUNNING", pid: Deno.pid });
  }
  {
    await using monitor = fakeMonitor(() => reply(0)); // STOPPED: no pid asked for
    assert.deepEqual(await queryMonitor(monitor.path), { state: "STOPPED" });
  }
  {
    await using monitor = fakeMonitor((c) => reply(c === 3 ? 6 : Deno.pid)); // FROZEN, with its init
    assert.deepEqual(await queryMonitor(monitor.path), { state: "FROZEN", pid: Deno.pid });
  }
  {
    await using monitor = fakeMonitor(() => undefined); // gone before it answered
    assert.equal(await queryMonitor(monitor.path), undefined);
  }
  const refused: [string, (c: number) => Uint8Array][] = [
    ["a state LXC has no name for", () => reply(42)],
    ["a failed command", (c) => reply(c === 3 ? 2 : 0, -22)],
    ["data after the answer", () => reply(2, 0, 8)],
    ["a short answer", () => reply(2).subarray(0, 8)],
    ["a pid that is no process", (c) => reply(c === 3 ? 2 : 2 ** 31 - 2)],
  ];
  for (const [what, answer] of refused) {
    await using monitor = fakeMonitor(answer);
    await assert.rejects(queryMonitor(monitor.path), CommandSocketError, what);
  }
  assert.equal(await queryMonitor(`\0pve-cri-test-nobody-${crypto.randomUUID()}`), undefined);
});

const why = Deno.uid() !== 0
  ? "needs root"
  : busyboxPath === undefined
  ? "busybox-static is not installed"
  : missingLxcTools();

/** A container of busybox-static alone, its init a long sleep, in `lxcpath`. */
function writeContainer(lxcpath: string, name: string): void {
  const root = `${lxcpath}/${name}/rootfs`;
  for (const dir of ["bin", "proc", "sys", "dev"]) {
    Deno.mkdirSync(`${root}/${dir}`, { recursive: true });
  }
  Deno.copyFileSync(busyboxPath!, `${root}/bin/busybox`);
  Deno.writeTextFileSync(
    `${lxcpath}/${name}/config`,
    lxcConfigText([
      ["lxc.uts.name", "sock"],
      ["lxc.rootfs.path", `dir:${root}`],
      ["lxc.mount.auto", "proc:mixed sys:mixed"],
      ["lxc.autodev", "1"],
      ["lxc.tty.max", "0"],
      ["lxc.net.0.type", "empty"],
      ["lxc.init.cmd", "/bin/busybox sleep 600"],
    ]),
  );
}

Deno.test({
  name:
    `a container's monitor tells its state and init pid as lxc-info does, under either socket name${
      why === undefined ? "" : ` (skipped: ${why})`
    }`,
  ignore: why !== undefined,
  async fn() {
    using dir = tempDir("pve-cri-lxcsock-");
    const name = `pve-cri-sock-${crypto.randomUUID().slice(0, 8)}`;
    for (const lxcpath of [`${dir.path}/short`, `${dir.path}/${"long".repeat(20)}`]) {
      writeContainer(lxcpath, name);
      const tools = new LxcTools(lxcpath);
      const socket = commandSocket(lxcpath, name);
      assert.equal(socket.startsWith("\0lxc/"), lxcpath.length > 80, "hashed for the long path");
      assert.equal(await queryMonitor(socket), undefined, "not started: nothing answers");
      assert.deepEqual(await tools.info(name), { state: "STOPPED" });
      const monitor = new Deno.Command("lxc-start", {
        args: ["-F", "-P", lxcpath, "-n", name, "-l", "ERROR", "-o", `${lxcpath}/lxc.log`],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        assert.equal(await tools.waitRunning(name, 30), true);
        const info = await queryMonitor(socket);
        const tool = await runTool("lxc-info", ["-P", lxcpath, "-n", name, "-s", "-p"]);
        assert.equal(info?.state, /^State:\s+(\S+)/m.exec(tool)?.[1]);
        assert.equal(info?.pid, Number(/^PID:\s+(\d+)/m.exec(tool)?.[1]));
        assert.match(Deno.readTextFileSync(`/proc/${info!.pid}/cmdline`), /^\/bin\/busybox\0sleep/);
        assert.deepEqual(await tools.info(name), info);
        // Frozen, it still has its init, as lxc-info says.
        await runTool("lxc-freeze", ["-P", lxcpath, "-n", name]);
        const frozen = await runTool("lxc-info", ["-P", lxcpath, "-n", name, "-s", "-p"]);
        assert.deepEqual(await queryMonitor(socket), {
          state: /^State:\s+(\S+)/m.exec(frozen)?.[1],
          pid: Number(/^PID:\s+(\d+)/m.exec(frozen)?.[1]),
        });
        assert.equal((await queryMonitor(socket))?.state, "FROZEN");
        await runTool("lxc-unfreeze", ["-P", lxcpath, "-n", name]);
      } finally {
        await new LxcTools(lxcpath).kill(name);
        await monitor.status;
      }
      assert.equal(await queryMonitor(socket), undefined, "stopped: nothing answers");
      const controller = new AbortController();
      controller.abort();
      assert.equal(await tools.waitRunning(name, 30, controller.signal), false, "given up");
    }
  },
});
