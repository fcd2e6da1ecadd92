/**
 * Store benchmarks: single-event and batched appends, a full re-fold of a million events
 * checked against the projections, and resident memory with 10,000 streams' actors loaded.
 */
import { DatabaseSync } from "node:sqlite";
import { transition } from "xstate";
import { upcastEvent } from "../machines/events.ts";
import { isStreamKind, machines, toDomainEvent, xstateMachines } from "../machines/fold.ts";
import { foldLog } from "../machines/log_fold.ts";
import { projectionNames, type StreamDoc, summarize } from "../machines/projections.ts";
import { EventStore } from "../store/mod.ts";
import { type BenchContext, type Benchmark, round } from "./bench.ts";
import { buildLog, openBenchStore } from "./store_log.ts";

const event = (i: number) => ({
  type: "Counted",
  typeVersion: 1,
  data: { i, note: "a payload of realistic size for a small event" },
});

function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = Deno.makeTempDirSync({ prefix: "pve-cri-bench-" });
  return fn(dir).finally(() => Deno.removeSync(dir, { recursive: true }));
}

/** What one transaction per row costs here, without pve-cri: the machine's ceiling. */
function rawCommitCeiling(dir: string, rows: number): number {
  const db = new DatabaseSync(`${dir}/raw.db`);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE t (x TEXT)");
  const insert = db.prepare("INSERT INTO t (x) VALUES (?)");
  const start = performance.now();
  for (let i = 0; i < rows; i++) insert.run(`row ${i}`);
  const rate = rows / ((performance.now() - start) / 1000);
  db.close();
  return rate;
}

async function appendSingle({ emit }: BenchContext): Promise<void> {
  await withDir(async (dir) => {
    const store = EventStore.open({ path: `${dir}/events.db` });
    const writers = 1000;
    const perWriter = 100;
    // As the registry does: many streams, each appending one event at a time.
    let start = performance.now();
    await Promise.all(Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; i < perWriter; i++) {
        await store.appendToStream(`w${w}`, [event(i)], { kind: "bench" });
      }
    }));
    const concurrent = (writers * perWriter) / ((performance.now() - start) / 1000);
    // One writer, each append its own transaction.
    const sequentialCount = 20_000;
    start = performance.now();
    for (let i = 0; i < sequentialCount; i++) {
      await store.appendToStream(`s${i % 100}`, [event(i)], { kind: "bench" });
    }
    const sequential = sequentialCount / ((performance.now() - start) / 1000);
    store.close();
    emit({
      bench: "store.append_single",
      value: Math.round(concurrent),
      unit: "events/s",
      writers,
      sequential_events_per_s: Math.round(sequential),
      raw_commit_ceiling_per_s: Math.round(rawCommitCeiling(dir, 20_000)),
    });
  });
}

async function appendBatch({ emit }: BenchContext): Promise<void> {
  await withDir(async (dir) => {
    const store = EventStore.open({ path: `${dir}/events.db` });
    const batch = 100;
    const calls = 2000;
    const start = performance.now();
    for (let c = 0; c < calls; c++) {
      const events = Array.from({ length: batch }, (_, i) => event(c * batch + i));
      await store.appendToStream(`b${c % 100}`, events, { kind: "bench" });
    }
    const rate = (batch * calls) / ((performance.now() - start) / 1000);
    store.close();
    emit({ bench: "store.append_batch", value: Math.round(rate), unit: "events/s", batch });
  });
}

/** Re-folds every event, then checks each stream's fold against its projection row. */
function replayAndCheck(path: string) {
  const store = EventStore.open({ path, readOnly: true, upcast: upcastEvent });
  try {
    const start = performance.now();
    const fold = foldLog(store);
    const folded = performance.now();
    let mismatches = fold.problems.length;
    for (const kind of ["sandbox", "container"] as const) {
      const rows = new Map(
        store.listProjectionText(projectionNames[kind]).map((r) => [r.stream, r]),
      );
      for (const s of fold.streams.values()) {
        if (s.kind !== kind || s.state === null) continue;
        const row = rows.get(s.stream);
        if (machines[kind].isFinal(s.state.value)) {
          if (row !== undefined) mismatches++;
          continue;
        }
        // Byte for byte: the stored document is what the projector wrote from the same fold.
        const doc: StreamDoc<unknown> = {
          state: s.state.value,
          context: s.state.context,
          updatedAt: s.lastTime,
        };
        const summary = (summarize[kind] as (state: unknown) => unknown)(s.state);
        const same = row !== undefined && row.version === s.version &&
          row.doc === JSON.stringify(doc) &&
          JSON.stringify(row.summary) === JSON.stringify(summary);
        if (!same) mismatches++;
      }
    }
    const checked = performance.now();
    return {
      seconds: (checked - start) / 1000,
      foldSeconds: (folded - start) / 1000,
      checkSeconds: (checked - folded) / 1000,
      events: fold.events,
      streams: fold.streams.size,
      mismatches,
    };
  } finally {
    store.close();
  }
}

/** XState's own transition() on a sample of the log, for comparison. */
function xstateMicrosPerEvent(path: string, sample: number): number {
  const store = EventStore.open({ path, readOnly: true });
  try {
    const events = store.readAll(0, sample);
    const snapshots = new Map<string, ReturnType<typeof xstateMachines.sandbox.resolveState>>();
    const start = performance.now();
    for (const e of events) {
      if (!isStreamKind(e.kind)) continue;
      const machine = xstateMachines[e.kind];
      const initial = machines[e.kind].initialState(e.stream);
      const snapshot = snapshots.get(e.stream) ??
        machine.resolveState({ value: initial.value, context: initial.context as never });
      const [next] = transition(machine as never, snapshot as never, toDomainEvent(e) as never);
      snapshots.set(e.stream, next as never);
    }
    return ((performance.now() - start) * 1000) / events.length;
  } finally {
    store.close();
  }
}

async function measureRss(path: string): Promise<number> {
  const child = new URL("./store_rss_child.ts", import.meta.url).pathname;
  const { stdout, success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--v8-flags=--expose-gc", child, path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`RSS child failed: ${new TextDecoder().decode(stderr)}`);
  return Number(new TextDecoder().decode(stdout).trim());
}

async function logBenchmarks({ emit, wants }: BenchContext): Promise<void> {
  await withDir(async (dir) => {
    const path = `${dir}/events.db`;
    const streams = 10_000;
    const buildStart = performance.now();
    const events = await buildLog(path, streams);
    const buildSeconds = (performance.now() - buildStart) / 1000;
    if (wants("store.replay_1m")) {
      const r = replayAndCheck(path);
      emit({
        bench: "store.replay_1m",
        value: round(r.seconds, 3),
        unit: "s",
        events: r.events,
        streams: r.streams,
        fold_s: round(r.foldSeconds, 3),
        check_s: round(r.checkSeconds, 3),
        mismatches: r.mismatches,
        xstate_transition_us_per_event: round(xstateMicrosPerEvent(path, 50_000), 2),
        build_s: round(buildSeconds, 1),
      });
    }
    if (wants("store.rss_10k_streams")) {
      const store = openBenchStore(path);
      const live = store.listProjection("sandboxes").length +
        store.listProjection("containers").length;
      store.close();
      emit({
        bench: "store.rss_10k_streams",
        value: round(await measureRss(path), 1),
        unit: "MB",
        streams: live,
        events,
      });
    }
  });
}

export const benchmarks: Benchmark[] = [
  { results: ["store.append_single"], run: appendSingle },
  { results: ["store.append_batch"], run: appendBatch },
  { results: ["store.replay_1m", "store.rss_10k_streams"], run: logBenchmarks },
];
