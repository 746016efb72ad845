// Why: one way for every command to print results: human text on stdout, a single JSON document
// with --json (so scripts can pipe it to jq), and errors on stderr in the matching form.
import { isUserError } from '../user-error.js';

export interface OutputOptions {
  json?: boolean;
}

/** Prints `data` as one pretty JSON document followed by a newline. */
export function printJson(data: unknown): void {
  process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
}

/** Prints either the JSON form or the human form of a command's result. */
export function printResult<T>(opts: OutputOptions, data: T, human: (data: T) => string): void {
  if (opts.json) printJson(data);
  else {
    const text = human(data);
    if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/** Renders an error for the user and returns the process exit code to use. */
export function reportError(err: unknown, json: boolean): number {
  if (isUserError(err)) {
    if (json) process.stderr.write(`${JSON.stringify({ error: err.message, hint: err.hint ?? null })}\n`);
    else {
      process.stderr.write(`error: ${err.message}\n`);
      if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    }
    return err.exitCode;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  if (json) process.stderr.write(`${JSON.stringify({ error: e.message, hint: null, bug: true })}\n`);
  else process.stderr.write(`error: ${e.stack ?? e.message}\n(this is a bug in pifaas; please report it)\n`);
  return 1;
}

/** Formats a byte count the way docker and npm do (base 1000, one decimal). */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** A fixed-width text table (no borders), as `docker ps` prints. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
