import assert from "node:assert/strict";
import { concatBytes } from "../../lib/bytes.ts";
import {
  fileSource,
  streamSource,
  TarFormatError,
  tarHeader,
  tarPadding,
  TarReader,
  tarTrailer,
} from "../../lib/tar.ts";
import { tempDir } from "../_support/temp_dir.ts";

const text = (s: string) => new TextEncoder().encode(s);

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...(cwd ? { cwd } : {}),
  })
    .output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

Deno.test("An archive written here is read back by GNU tar: long names, links, modes, sizes", async () => {
  using dir = tempDir();
  const longName = `deep/${"d".repeat(120)}/${"f".repeat(90)}.txt`;
  const veryLong = `${"x".repeat(200)}/${"y".repeat(150)}`;
  const data = text("hello\n");
  const entries = [
    { header: { name: "deep/", type: "directory" as const, mode: 0o750 }, data: new Uint8Array() },
    { header: { name: longName, type: "file" as const, size: data.length }, data },
    { header: { name: veryLong, type: "file" as const, size: 3, mode: 0o600 }, data: text("abc") },
    {
      header: { name: "link", type: "symlink" as const, linkname: "/" + "l".repeat(150) },
      data: new Uint8Array(),
    },
    {
      header: { name: "hard", type: "hardlink" as const, linkname: longName },
      data: new Uint8Array(),
    },
  ];
  const parts: Uint8Array[] = [];
  let expected = 1024;
  for (const { header, data } of entries) {
    parts.push(tarHeader(header), data, tarPadding(data.length));
    expected += tarHeader(header).length + data.length + tarPadding(data.length).length;
  }
  parts.push(tarTrailer());
  const archive = concatBytes(parts);
  assert.equal(archive.length, expected);
  Deno.writeFileSync(`${dir.path}/a.tar`, archive);
  const listing = await run("tar", ["-tvf", `${dir.path}/a.tar`]);
  assert.match(listing, new RegExp(`^drwxr-x--- .* deep/$`, "m"));
  assert.match(listing, new RegExp(`^-rw-r--r-- .* 6 .* ${longName}$`, "m"));
  assert.match(listing, new RegExp(`^-rw------- .* 3 .* ${veryLong}$`, "m"));
  assert.match(listing, new RegExp(`link -> /l{150}$`, "m"));
  assert.match(listing, new RegExp(`hard link to ${longName}$`, "m"));
  await run("tar", ["-xf", `${dir.path}/a.tar`, "-C", dir.path]);
  assert.equal(Deno.readTextFileSync(`${dir.path}/${veryLong}`), "abc");
});

Deno.test("GNU tar's archives are read entry by entry, from a file or a stream", async () => {
  using dir = tempDir();
  const root = `${dir.path}/root`;
  const long = `${"n".repeat(110)}/${"m".repeat(120)}`;
  Deno.mkdirSync(`${root}/${long}`, { recursive: true });
  Deno.writeTextFileSync(`${root}/${long}/file`, "x".repeat(1000));
  Deno.writeTextFileSync(`${root}/small`, "small");
  Deno.symlinkSync("small", `${root}/sym`);
  Deno.linkSync(`${root}/small`, `${root}/hl`);
  for (const format of ["gnu", "posix"]) {
    const path = `${dir.path}/${format}.tar`;
    await run("tar", [`--format=${format}`, "-cf", path, "-C", root, "."]);
    for (const source of ["file", "stream"]) {
      const file = await Deno.open(path);
      const reader = new TarReader(
        source === "file" ? fileSource(file, 700) : streamSource(file.readable),
      );
      const seen = new Map<string, { type: string; linkname: string; data?: string }>();
      for (let entry = await reader.next(); entry; entry = await reader.next()) {
        const body = entry.name.endsWith("small") || entry.name.endsWith("/file")
          ? new TextDecoder().decode(await reader.readData(4096))
          : undefined;
        seen.set(entry.name, {
          type: entry.type,
          linkname: entry.linkname,
          ...(body === undefined ? {} : { data: body }),
        });
      }
      if (source === "file") file.close();
      const label = `${format}/${source}`;
      assert.equal(seen.get(`${long}/file`)?.data, "x".repeat(1000), label);
      assert.equal(seen.get("small")?.data, "small", label);
      assert.deepEqual(seen.get("sym"), { type: "symlink", linkname: "small" }, label);
      const hard = seen.get("hl") ?? seen.get("small");
      assert.ok(hard?.type === "hardlink" || seen.get("small")?.type === "hardlink", label);
      assert.equal(seen.get(`${long}/`)?.type ?? seen.get(long)?.type, "directory", label);
    }
  }
});

Deno.test("A reader refuses what is not tar, and an archive cut short", async () => {
  const garbage = streamSource((async function* () {
    yield text("this is not a tar archive".padEnd(600, "!"));
  })());
  await assert.rejects(new TarReader(garbage).next(), TarFormatError);
  const header = tarHeader({ name: "f", type: "file", size: 2000 });
  const cut = new TarReader(streamSource((async function* () {
    yield header;
    yield new Uint8Array(100);
  })()));
  await cut.next();
  await assert.rejects(cut.readData(4096), /cut short|ends inside/);
});
