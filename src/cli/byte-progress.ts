// Why: downloads, image writes and pushes move many bytes; users need a bar with speed and ETA on a
// terminal, and plain periodic lines (no control characters) when stderr is a log file or CI.
import cliProgress from 'cli-progress';
import { formatBytes } from './output.js';

export interface ByteProgress {
  /** Sets the absolute number of bytes done (and the total, when it became known late). */
  update(done: number, total?: number): void;
  stop(): void;
}

export interface ByteProgressOptions {
  label: string;
  total?: number;
  /** Where to draw; defaults to stderr so stdout stays clean for --json. */
  stream?: NodeJS.WriteStream;
  /** Draw nothing at all (e.g. under --json or --quiet). */
  silent?: boolean;
}

export function createByteProgress(opts: ByteProgressOptions): ByteProgress {
  const stream = opts.stream ?? process.stderr;
  if (opts.silent) return { update() {}, stop() {} };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${opts.label} [{bar}] {percentage}% | {doneH}/{totalH} | {speed}/s | ETA {eta_formatted}`,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    const started = Date.now();
    let total = opts.total ?? 0;
    bar.start(total || 1, 0, { doneH: formatBytes(0), totalH: total ? formatBytes(total) : '?', speed: '0 B' });
    return {
      update(done, newTotal) {
        if (newTotal !== undefined && newTotal !== total) {
          total = newTotal;
          bar.setTotal(total);
        }
        const secs = Math.max((Date.now() - started) / 1000, 0.001);
        bar.update(done, {
          doneH: formatBytes(done),
          totalH: total ? formatBytes(total) : '?',
          speed: formatBytes(done / secs),
        });
      },
      stop() {
        bar.stop();
      },
    };
  }
  // Not a terminal: one line every 10% (or every 5 s when the total is unknown).
  let total = opts.total;
  let lastPct = -1;
  let lastAt = 0;
  const started = Date.now();
  let lastDone = 0;
  const say = (done: number) => {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    const pct = total ? ` (${Math.floor((done / total) * 100)}%)` : '';
    stream.write(`${opts.label}: ${formatBytes(done)}${total ? ` of ${formatBytes(total)}` : ''}${pct}, ${formatBytes(done / secs)}/s\n`);
  };
  return {
    update(done, newTotal) {
      if (newTotal !== undefined) total = newTotal;
      lastDone = done;
      const now = Date.now();
      if (total) {
        const pct = Math.floor((done / total) * 10);
        if (pct > lastPct) {
          lastPct = pct;
          say(done);
        }
      } else if (now - lastAt > 5000) {
        lastAt = now;
        say(done);
      }
    },
    stop() {
      if (!total || lastPct < 10) say(lastDone);
    },
  };
}
