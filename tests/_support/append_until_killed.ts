// deno-lint-ignore-file no-console
/**
 * Child process for the durability test: appends one event at a time and prints the seq of
 * each acknowledged append, until it is killed.
 */
import { EventStore } from "../../store/mod.ts";

const store = EventStore.open({ path: Deno.args[0]! });
for (let i = 0;; i++) {
  const { events } = await store.appendToStream(`s${i % 7}`, [
    { type: "Counted", typeVersion: 1, data: { i } },
  ], { kind: "k" });
  console.log(events[0]!.seq);
}
