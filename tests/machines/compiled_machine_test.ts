/**
 * The compiled transition table must be XState: on every state × event type, over contexts
 * reached by random walks, it picks the same next state, context and effects as XState's
 * pure transition(), and refuses exactly what XState ignores.
 */
import assert from "node:assert/strict";
import { type AnyStateMachine, transition } from "xstate";
import type { FoldState } from "../../machines/compiled_machine.ts";
import { type DomainEvent, type StreamKind, streamKinds } from "../../machines/events.ts";
import { machines, xstateMachines } from "../../machines/fold.ts";
import { Random } from "../_support/random.ts";
import { eventTypesOf, samplePayload } from "../_support/sample_events.ts";

function reachableStates(kind: StreamKind, random: Random, walks: number): FoldState<unknown>[] {
  const machine = machines[kind];
  const seen: FoldState<unknown>[] = [];
  for (let w = 0; w < walks; w++) {
    let state = machine.initialState(`stream-${w}`) as FoldState<unknown>;
    for (let step = 0; step < 100 && !machine.isFinal(state.value); step++) {
      seen.push(state);
      const legal = eventTypesOf(kind).filter((type) => {
        const e = { ...samplePayload(type, state.context as never, random), time: step };
        return machine.step(state as never, e as DomainEvent).ok;
      });
      if (legal.length === 0) break;
      // Mostly the happy path, so walks get deep; failures still show up often enough.
      const happy = legal.filter((t) => !t.endsWith("Failed"));
      const type = random.pick(happy.length > 0 && random.chance(0.8) ? happy : legal);
      const event = { ...samplePayload(type, state.context as never, random), time: 1000 + step };
      const next = machine.step(state as never, event as DomainEvent);
      if (!next.ok) throw new Error(next.reason);
      state = next.state as FoldState<unknown>;
    }
    seen.push(state);
  }
  return seen;
}

function xstateStep(machine: AnyStateMachine, state: FoldState<unknown>, event: DomainEvent) {
  const snapshot = machine.resolveState({ value: state.value, context: state.context as never });
  if (!snapshot.can(event)) return { ok: false as const };
  const [next, actions] = transition(machine, snapshot, event);
  return {
    ok: true as const,
    value: next.value as string,
    context: next.context as unknown,
    effects: actions.map((a) =>
      a.params === undefined ? { type: a.type } : { type: a.type, params: a.params }
    ),
  };
}

for (const kind of streamKinds) {
  Deno.test(`the compiled ${kind} table equals XState's transition() on every state × event`, () => {
    const random = new Random(20261126);
    const compiled = machines[kind];
    const states = reachableStates(kind, random, 300);
    const visited = new Set(states.map((s) => s.value));
    assert.deepEqual(
      compiled.stateNames().filter((s) => !visited.has(s)),
      [],
      "every state is reached by some walk",
    );
    let compared = 0;
    for (const state of states) {
      for (const type of eventTypesOf(kind)) {
        const event = {
          ...samplePayload(type, state.context as never, random),
          time: 5000,
        } as DomainEvent;
        const ours = compiled.step(state as never, event);
        const theirs = xstateStep(xstateMachines[kind], state, event);
        const where = `${state.value} + ${type}`;
        assert.equal(ours.ok, theirs.ok, `${where}: legal in one and not the other`);
        if (ours.ok && theirs.ok) {
          assert.equal(ours.state.value, theirs.value, `${where}: next state`);
          assert.deepEqual(ours.state.context, theirs.context, `${where}: context`);
          assert.deepEqual(ours.effects, theirs.effects, `${where}: effects`);
        }
        compared++;
      }
    }
    assert.ok(compared > 1000, `compared ${compared} pairs`);
  });
}
