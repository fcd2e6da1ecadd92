/**
 * Pull and import progress as docker and skopeo users know it: on a terminal, a line per
 * layer (bytes done of total, rate), redrawn in place at most ten times a second; without a
 * terminal, nothing until the summary.
 */
import type { PullProgress } from "../runtime/api.ts";

export interface Terminal {
  isTerminal: boolean;
  write(text: string): void;
}

interface Transfer {
  label: string;
  done: number;
  total: number;
  startedAt: number | undefined;
  finishedAt: number | undefined;
}

const redrawMs = 100;

export class ProgressView {
  readonly #terminal: Terminal;
  readonly #now: () => number;
  readonly #layers = new Map<string, Transfer>();
  #template: Transfer | undefined;
  #drawn = 0;
  #lastDraw = -Infinity;

  constructor(terminal: Terminal, now: () => number = () => performance.now()) {
    this.#terminal = terminal;
    this.#now = now;
  }

  update(progress: PullProgress): void {
    const now = this.#now();
    switch (progress.kind) {
      case "resolved":
        for (const layer of progress.layers) {
          this.#layers.set(layer.digest, transfer(layer.digest.slice(0, 19), layer.size));
        }
        break;
      case "layer": {
        const layer = this.#layers.get(progress.digest) ??
          transfer(progress.digest.slice(0, 19), progress.total);
        this.#layers.set(progress.digest, advance(layer, progress.done, progress.total, now));
        break;
      }
      case "template":
        this.#template = advance(
          this.#template ?? transfer("template", progress.total),
          progress.done,
          progress.total,
          now,
        );
        break;
    }
    if (this.#terminal.isTerminal && now - this.#lastDraw >= redrawMs) this.#draw(now);
  }

  /** The last picture, complete. */
  finish(): void {
    if (this.#terminal.isTerminal) this.#draw(this.#now());
  }

  /** `3 layers, 52.4MB in 0.6 s, 87.3MB/s`. */
  summary(seconds: number): string {
    const bytes = [...this.#layers.values()].reduce((sum, l) => sum + l.total, 0);
    const count = this.#layers.size;
    const rate = seconds > 0 ? `, ${humanBytes(bytes / seconds)}/s` : "";
    return `${count} layer${count === 1 ? "" : "s"}, ${humanBytes(bytes)} in ${
      seconds.toFixed(1)
    } s${rate}`;
  }

  #draw(now: number): void {
    this.#lastDraw = now;
    const lines = [...this.#layers.values(), ...(this.#template ? [this.#template] : [])]
      .map((t) => line(t, now));
    let text = this.#drawn > 0 ? `\x1b[${this.#drawn}F` : "";
    for (const l of lines) text += `\x1b[2K${l}\n`;
    this.#terminal.write(text);
    this.#drawn = lines.length;
  }
}

function transfer(label: string, total: number): Transfer {
  return { label, done: 0, total, startedAt: undefined, finishedAt: undefined };
}

function advance(t: Transfer, done: number, total: number, now: number): Transfer {
  return {
    ...t,
    done,
    total,
    startedAt: t.startedAt ?? now,
    finishedAt: done >= total ? (t.finishedAt ?? now) : undefined,
  };
}

function line(t: Transfer, now: number): string {
  const label = t.label.padEnd(19);
  if (t.startedAt === undefined) return `${label}  waiting`;
  const bytes = `${humanBytes(t.done)} / ${humanBytes(t.total)}`;
  const seconds = ((t.finishedAt ?? now) - t.startedAt) / 1000;
  const rate = seconds > 0.05 ? `  ${humanBytes(t.done / seconds)}/s` : "";
  const state = t.done >= t.total ? "  done" : "";
  return `${label}  ${bytes.padEnd(21)}${rate}${state}`;
}

/** `52.4MB`: decimal units, as docker shows sizes. */
export function humanBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? Math.round(value) : value.toFixed(1)}${units[unit]}`;
}
