import assert from "node:assert/strict";
import { ProgressView } from "../../cli/progress_view.ts";
import { listTable } from "../../cli/images.ts";

const a = `sha256:${"a".repeat(64)}`;
const b = `sha256:${"b".repeat(64)}`;

Deno.test("on a terminal, each layer's bytes and rate are redrawn in place, ten times a second at most", () => {
  let now = 0;
  const written: string[] = [];
  const view = new ProgressView({ isTerminal: true, write: (t) => written.push(t) }, () => now);
  view.update({
    kind: "resolved",
    imageId: "sha256:1",
    layers: [{ digest: a, size: 2_000_000 }, { digest: b, size: 500 }],
  });
  assert.equal(written.length, 1);
  const clear = "\x1b[2K";
  assert.equal(
    written[0],
    `${clear}sha256:aaaaaaaaaaaa  waiting\n${clear}sha256:bbbbbbbbbbbb  waiting\n`,
  );
  now = 10;
  view.update({ kind: "layer", digest: a, done: 1_000_000, total: 2_000_000 });
  assert.equal(written.length, 1, "not redrawn within 100 ms");
  now = 510;
  view.update({ kind: "layer", digest: a, done: 2_000_000, total: 2_000_000 });
  assert.equal(written.length, 2);
  const second = written[1]!;
  assert.ok(second.startsWith("\x1b[2F"), "back over the two lines drawn before");
  assert.ok(second.includes("sha256:aaaaaaaaaaaa  2.0MB / 2.0MB"), second);
  assert.ok(second.includes("4.0MB/s  done"), second);
  now = 520;
  view.update({ kind: "template", done: 1024, total: 4096 });
  view.finish();
  const last = written.at(-1)!;
  assert.ok(last.startsWith("\x1b[2F"), last);
  assert.equal(last.split("\n").length, 4, "two layers and the template, redrawn");
  assert.ok(last.split("\n")[2]!.startsWith(`${clear}template`), last);
  assert.ok(last.includes("1.0kB / 4.1kB"), last);
  assert.equal(view.summary(0.5), "2 layers, 2.0MB in 0.5 s, 4.0MB/s");
});

Deno.test("without a terminal nothing is drawn; listings look like crictl images", () => {
  const written: string[] = [];
  const view = new ProgressView({ isTerminal: false, write: (t) => written.push(t) });
  view.update({ kind: "resolved", imageId: "sha256:1", layers: [{ digest: a, size: 10 }] });
  view.update({ kind: "layer", digest: a, done: 10, total: 10 });
  view.finish();
  assert.deepEqual(written, []);
  assert.equal(view.summary(2), "1 layer, 10B in 2.0 s, 5B/s");
  assert.equal(
    listTable([
      {
        id: `sha256:${"c".repeat(64)}`,
        repoTags: ["r.io/a/b:v1", "r.io/a/b:latest"],
        repoDigests: [],
        size: 1_500_000,
        template: "",
      },
      { id: `sha256:${"d".repeat(64)}`, repoTags: [], repoDigests: [], size: 12, template: "" },
    ]),
    [
      "IMAGE     TAG     IMAGE ID       SIZE",
      "r.io/a/b  v1      ccccccccccccc  1.5MB",
      "r.io/a/b  latest  ccccccccccccc  1.5MB",
      "<none>    <none>  ddddddddddddd  12B",
    ].join("\n"),
  );
});
