// Why: OpenFaaS configures its watchdog with Go durations ("60s", "1m30s", "500ms"), and of-watchdog
// also takes a bare integer as seconds; our function reads the same env vars, so it parses the same way.

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds for a Go duration ("1h2m3.5s", "250ms", "0") or a bare integer number of seconds. */
export function parseGoDuration(value: string): number {
  const s = value.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    sign = s.startsWith('-') ? -1 : 1;
    pos = 1;
  }
  if (pos === s.length) throw new Error(`"${value}" is not a duration (examples: 60s, 1m30s, 500ms)`);
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) throw new Error(`"${value}" is not a duration (examples: 60s, 1m30s, 500ms)`);
    total += Number(m[1]) * (UNIT_MS[m[2] as string] ?? 0);
    pos = re.lastIndex;
  }
  if (sign < 0) throw new Error(`"${value}": a negative duration makes no sense here`);
  return total;
}
