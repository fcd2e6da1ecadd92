/**
 * Fault injection: rules matched against each API request (method and path under
 * `/api2/json` as sent, `*` matching one percent-encoded path segment). Set through `Simulator.faults` or the control
 * endpoint `POST /_sim/faults`.
 */

export interface FaultRule {
  /** Matches any method when absent. */
  method?: string;
  /** e.g. `/nodes/*\/lxc/*\/status/start`; matches any path when absent. */
  path?: string;
  /** Applies to this many matching requests, then expires; forever when absent. */
  times?: number;
  /** Waits this long before handling. */
  latencyMs?: number;
  /** Answers with this status instead of handling (message → reason phrase and body). */
  status?: number;
  message?: string;
  /** Closes the connection without an answer, before or after the handler ran. */
  drop?: "before" | "after";
  /** The task the request starts fails with this message. */
  failTask?: string;
  /** The task the request starts runs this long before its work. */
  taskDelayMs?: number;
  /** The task the request starts logs this many warnings (ends `WARNINGS: N`). */
  taskWarnings?: number;
  /** The CT's config file lock is held elsewhere: the request fails as PVE's flock times out. */
  lockTimeout?: boolean;
}

/** What applies to one request: the matching rules folded together. */
export interface AppliedFaults {
  latencyMs: number;
  status?: number;
  message?: string;
  drop?: "before" | "after";
  failTask?: string;
  taskDelayMs?: number;
  taskWarnings?: number;
  lockTimeout: boolean;
}

interface ActiveRule {
  id: number;
  rule: FaultRule;
  pattern: RegExp | undefined;
  remaining: number;
}

export class FaultInjector {
  #rules: ActiveRule[] = [];
  #nextId = 1;

  constructor(rules: readonly FaultRule[] = []) {
    for (const rule of rules) this.add(rule);
  }

  add(rule: FaultRule): number {
    const id = this.#nextId++;
    this.#rules.push({
      id,
      rule,
      pattern: rule.path === undefined ? undefined : pathPattern(rule.path),
      remaining: rule.times ?? Infinity,
    });
    return id;
  }

  remove(id: number): void {
    this.#rules = this.#rules.filter((r) => r.id !== id);
  }

  clear(): void {
    this.#rules = [];
  }

  list(): { id: number; rule: FaultRule; remaining: number }[] {
    return this.#rules.map(({ id, rule, remaining }) => ({ id, rule, remaining }));
  }

  /** The faults for this request; consumes one use of each matching rule. */
  take(method: string, path: string): AppliedFaults {
    const applied: AppliedFaults = { latencyMs: 0, lockTimeout: false };
    if (this.#rules.length === 0) return applied;
    for (const active of this.#rules) {
      const { rule } = active;
      if (rule.method !== undefined && rule.method.toUpperCase() !== method) continue;
      if (active.pattern !== undefined && !active.pattern.test(path)) continue;
      active.remaining--;
      applied.latencyMs += rule.latencyMs ?? 0;
      if (rule.status !== undefined) {
        applied.status = rule.status;
        applied.message = rule.message ?? "Injected fault";
      }
      if (rule.drop !== undefined) applied.drop = rule.drop;
      if (rule.failTask !== undefined) applied.failTask = rule.failTask;
      if (rule.taskDelayMs !== undefined) applied.taskDelayMs = rule.taskDelayMs;
      if (rule.taskWarnings !== undefined) applied.taskWarnings = rule.taskWarnings;
      if (rule.lockTimeout) applied.lockTimeout = true;
    }
    this.#rules = this.#rules.filter((r) => r.remaining > 0);
    return applied;
  }
}

function pathPattern(path: string): RegExp {
  const escaped = path.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join("[^/]+")}$`);
}

/** The spawn options a request's task faults stand for. */
export function taskFaults(
  applied: AppliedFaults,
): { failWith?: string; delayMs?: number; warnings?: number } {
  return {
    ...(applied.failTask === undefined ? {} : { failWith: applied.failTask }),
    ...(applied.taskDelayMs === undefined ? {} : { delayMs: applied.taskDelayMs }),
    ...(applied.taskWarnings === undefined ? {} : { warnings: applied.taskWarnings }),
  };
}
