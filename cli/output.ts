// deno-lint-ignore-file no-console
/** Where a command-line tool writes: stdout for results, stderr for the one error line. */
export interface Output {
  line(text: string): void;
  error(text: string): void;
}

export const consoleOutput: Output = {
  line: (text) => console.log(text),
  error: (text) => console.error(text),
};

/** Collects output, for tests. */
export function bufferOutput(): Output & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, line: (t) => stdout.push(t), error: (t) => stderr.push(t) };
}

/** A plain-text table: columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const format = (cells: string[]) =>
    cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i]!)).join("  ");
  return [format(header), ...rows.map(format)].join("\n");
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
