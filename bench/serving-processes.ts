// Why: the function can serve from several processes with onnxruntime-node (PIFAAS_PROCESSES, see
// src/function/serving-processes.ts), and whether that pays is a question of requests/s against one
// process on the same machine at the same moment. On a shared machine throughput drifts by a third
// from one minute to the next, so this starts both (PIFAAS_PROCESSES=1 and the default), then takes
// alternating rounds of autocannon at each concurrency and prints the ratio of each pair of rounds,
// with the CPU time per request and the resident memory of each function (all its processes).
//
// Usage: npm run build && npx tsx bench/serving-processes.ts [--model mobilenetv2-12-int8] [--rounds 6]
//        [--seconds 4] [--processes 2]
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processTreeUsage } from './process-usage.js';

interface AutocannonResult {
  requests: { average: number };
  non2xx: number;
  errors: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN_JS = path.join(REPO, 'dist', 'function', 'main.js');
const PHOTO = path.join(REPO, '..', 'shared', 'testdata', 'images', 'tiger.jpg');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}
const MODEL = arg('model', 'mobilenetv2-12-int8');
const ROUNDS = Number(arg('rounds', '6'));
const SECONDS = Number(arg('seconds', '4'));
const PROCESSES = Number(arg('processes', '2'));

interface Fn {
  label: string;
  proc: ChildProcess;
  port: number;
}

async function startFunction(label: string, processes: number, port: number): Promise<Fn> {
  const proc = spawn(process.execPath, [MAIN_JS], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, port: String(port), PIFAAS_FUNCTION: 'faas-resnet', PIFAAS_MODEL: MODEL, PIFAAS_ENGINE: 'node', PIFAAS_PROCESSES: String(processes) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${label} exited with ${code}`)));
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (processes > 1 ? /serving from \d+ processes/.test(out) : /ready in \d+ ms/.test(out)) resolve();
    });
  });
  return { label, proc, port };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
}

async function main(): Promise<void> {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run npm run build first`);
  if (!(PROCESSES >= 2)) throw new Error('--processes must be 2 or more (it is compared with one process)');
  const photo = await readFile(PHOTO);
  const base = 18400 + Math.floor(Math.random() * 500);
  const fns = [await startFunction('1 process', 1, base), await startFunction(`${PROCESSES} processes`, PROCESSES, base + 1)];
  const lines: string[] = [];
  try {
    for (const connections of [1, 2, 4, 8]) {
      const rps: number[][] = [[], []];
      const cpu: number[] = [0, 0];
      const requests: number[] = [0, 0];
      for (let round = 0; round < ROUNDS; round++) {
        // Alternating which goes first, so that neither always follows the other.
        for (const i of round % 2 ? [1, 0] : [0, 1]) {
          const fn = fns[i] as Fn;
          const before = await processTreeUsage(fn.proc.pid ?? 0);
          const r = await autocannon({ url: `http://127.0.0.1:${fn.port}/function/faas-resnet`, method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photo, connections, duration: SECONDS });
          if (r.non2xx || r.errors) throw new Error(`${fn.label}: ${r.non2xx} answers not 2xx, ${r.errors} errors`);
          cpu[i] = (cpu[i] as number) + (await processTreeUsage(fn.proc.pid ?? 0)).cpuMs - before.cpuMs;
          requests[i] = (requests[i] as number) + r.requests.average * SECONDS;
          (rps[i] as number[]).push(r.requests.average);
        }
      }
      const ratios = (rps[1] as number[]).map((v, k) => v / ((rps[0] as number[])[k] as number));
      const line = `c=${connections}: requests/s median ${median(rps[0] as number[]).toFixed(1)} (1 process) vs ${median(rps[1] as number[]).toFixed(1)} (${PROCESSES} processes); ratio per pair ${ratios.map((x) => x.toFixed(2)).join(' ')} (median ${median(ratios).toFixed(2)}x); CPU per request ${((cpu[0] as number) / (requests[0] as number)).toFixed(2)} vs ${((cpu[1] as number) / (requests[1] as number)).toFixed(2)} ms`;
      process.stderr.write(`${line}\n`);
      lines.push(line);
    }
    const rss = await Promise.all(fns.map((fn) => processTreeUsage(fn.proc.pid ?? 0)));
    lines.push(`resident memory after the rounds: ${rss.map((u, i) => `${(fns[i] as Fn).label} ${u.rssMb.toFixed(0)} MB`).join(', ')} (all processes of each)`);
  } finally {
    for (const fn of fns) fn.proc.kill('SIGTERM');
  }
  process.stdout.write(`\npifaas serving processes: ${MODEL} on tiger.jpg, ${ROUNDS} alternating rounds of ${SECONDS} s per concurrency, node ${process.version}, ${process.platform}/${process.arch}\n${lines.join('\n')}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).message}\n`);
  process.exit(1);
});
