/**
 * Crash injection, for the crash-point tests only and off unless set: the process SIGKILLs
 * itself right after the Nth committed event of a type (`PVE_CRI_CRASH_AFTER=Type[:N]`) or
 * right before the Nth start of an effect (`PVE_CRI_CRASH_BEFORE_EFFECT=name[:N]`). Names are
 * checked against the event catalogue and the machines' effects, so every event type and every
 * effect is a crash point, and a misspelt one is an error, not a test that never crashes.
 */
import { InvalidArgumentError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { containerEffectNames, imageEffectNames, sandboxEffectNames } from "./effects.ts";
import { catalog } from "./events.ts";

interface Point {
  name: string;
  /** Crashes on this occurrence (1 = the first). */
  nth: number;
  seen: number;
}

export class CrashPoints {
  readonly #after: Point | undefined;
  readonly #before: Point | undefined;
  readonly #log: Logger;

  private constructor(after: Point | undefined, before: Point | undefined, log: Logger) {
    this.#after = after;
    this.#before = before;
    this.#log = log;
  }

  /** The points the environment sets, or undefined when it sets none. */
  static fromEnv(get: (name: string) => string | undefined, log: Logger): CrashPoints | undefined {
    const after = parse(
      "PVE_CRI_CRASH_AFTER",
      get("PVE_CRI_CRASH_AFTER"),
      new Set(Object.keys(catalog)),
      "event type",
    );
    const before = parse(
      "PVE_CRI_CRASH_BEFORE_EFFECT",
      get("PVE_CRI_CRASH_BEFORE_EFFECT"),
      new Set<string>([...sandboxEffectNames, ...containerEffectNames, ...imageEffectNames]),
      "effect",
    );
    if (after === undefined && before === undefined) return undefined;
    return new CrashPoints(after, before, log);
  }

  /** Called once events are durable. */
  committed(types: readonly string[]): void {
    for (const type of types) this.#hit(this.#after, type, "after committing");
  }

  /** Called as an effect is about to start. */
  effectStarting(name: string): void {
    this.#hit(this.#before, name, "before starting");
  }

  #hit(point: Point | undefined, name: string, when: string): void {
    if (point === undefined || point.name !== name) return;
    point.seen++;
    if (point.seen !== point.nth) return;
    this.#log.error("crash injected", { point: `${when} ${name}`, occurrence: point.nth });
    Deno.kill(Deno.pid, "SIGKILL");
  }
}

function parse(
  variable: string,
  value: string | undefined,
  known: Set<string>,
  what: string,
): Point | undefined {
  if (value === undefined || value === "") return undefined;
  const match = /^([A-Za-z]+)(?::(\d+))?$/.exec(value);
  if (match === null || !known.has(match[1]!) || Number(match[2] ?? 1) < 1) {
    throw new InvalidArgumentError(
      `${variable}="${value}": expected ${what}[:N] with a known ${what} and N ≥ 1`,
      { details: { variable } },
    );
  }
  return { name: match[1]!, nth: Number(match[2] ?? 1), seen: 0 };
}
