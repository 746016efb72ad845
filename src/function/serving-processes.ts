// Why: onnxruntime-node computes on the JavaScript thread that calls it, and Node 20 reads a
// listening socket on one thread only. In one process, every request is read and decoded on the main
// thread and handed to an inference thread and back: two thread wake-ups per request and three busy
// threads on two cores. With PIFAAS_PROCESSES=N, N serving processes instead each read, decode, infer
// and answer their own requests (Node's cluster module hands each new connection to the next one). On
// the 2-vCPU development VM, 2026-12-06, in alternating rounds with MobileNetV2, two processes answered
// 11-31% more requests/s at concurrency 2, and up to 15% more at 4 and 8 while the host was quiet, for
// about 170 MB more memory: opt-in (see servingProcessCount). This module is the parent: it forks the
// processes, prints start-up lines once, relays SIGTERM (each process drains its own requests) and
// stops the function when one process dies, so that the orchestrator restarts it whole. What the
// processes share is in inflight-board.ts.
import cluster, { type Worker } from 'node:cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InflightBoard } from './inflight-board.js';
import { nodeEngineSupported } from './inference-engine.js';

/** Set by the parent for each serving process: its slot on the board, and the board's file. */
const SLOT_ENV = 'PIFAAS_SERVING_SLOT';
const BOARD_ENV = 'PIFAAS_SERVING_BOARD';

type FromServingProcess = { kind: 'log'; line: string } | { kind: 'ready'; functionName: string; summary: string } | { kind: 'failed'; message: string };

export const MAX_SERVING_PROCESSES = 64;

/**
 * How many serving processes to start, read in the parent before anything else is loaded (the
 * parent stays small and forks at once): PIFAAS_PROCESSES with onnxruntime-node, else one. One is
 * the default: a second process costs about 170 MB more for MobileNetV2 (215 against 384 MB here),
 * which a Raspberry Pi may not have. onnxruntime-web serves from one process, its session already
 * using every core. A value that is not a whole number from 1 to 64 gives 1: that one process then
 * validates the whole configuration (function-config.ts) and refuses it with its one clear line.
 */
export function servingProcessCount(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.PIFAAS_PROCESSES?.trim() ?? '';
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_SERVING_PROCESSES) return 1;
  return (env.PIFAAS_ENGINE ?? '').trim().toLowerCase() === 'web' || !nodeEngineSupported() ? 1 : Number(v);
}

/**
 * The folder for the processes' shared board (removed when the function stops), in the temporary
 * folder. Throws when it cannot be made (e.g. a read-only file system with no writable /tmp).
 */
export function makeBoardDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'pifaas-board-'));
}

export interface ParentOptions {
  processes: number;
  /** From makeBoardDir(). */
  boardDir: string;
  /** Lifecycle lines (stdout). */
  log: (line: string) => void;
  /** Error lines (stderr). */
  error: (line: string) => void;
}

/**
 * Forks `processes` copies of the running script as serving processes and supervises them: the
 * first at once (it listens at once, answering 503 while it loads, as one process would), the others
 * once it is ready, so that they do not slow down its start, each taking connections only once it
 * has loaded its model. Resolves with the exit code for the parent: 0 after a drain on
 * SIGTERM/SIGINT, 1 when a process failed to start or died.
 */
export function superviseServingProcesses(opts: ParentOptions): Promise<number> {
  const started = performance.now();
  const boardFile = path.join(opts.boardDir, 'inflight');
  InflightBoard.create(boardFile, opts.processes);
  const printed = new Set<string>();
  const workers: Worker[] = [];
  let readyCount = 0;
  let stopping = false;
  let failed = false;
  return new Promise<number>((resolve) => {
    const fail = (line: string) => {
      if (!failed) opts.error(line);
      failed = true;
      for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
    };
    const stop = (why: string) => {
      if (stopping || failed) return;
      stopping = true;
      opts.log(`${why}: refusing new requests, finishing the requests in flight (${workers.length} serving processes)`);
      for (const w of workers) if (!w.isDead()) w.process.kill('SIGTERM');
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    const fork = (slot: number) => {
      const w = cluster.fork({ [SLOT_ENV]: String(slot), [BOARD_ENV]: boardFile });
      workers.push(w);
      w.on('message', (m: FromServingProcess) => {
        if (m.kind === 'log') {
          // Every process says the same things while starting: once is enough.
          if (!printed.has(m.line)) opts.log(m.line);
          printed.add(m.line);
        } else if (m.kind === 'failed') {
          fail(`pifaas function: ${m.message}`);
        } else if (m.kind === 'ready' && !failed && !stopping) {
          readyCount++;
          const ms = Math.round(performance.now() - started);
          if (slot === 0) {
            opts.log(`${m.functionName}: ready in ${ms} ms: ${m.summary}${opts.processes > 1 ? `; starting ${opts.processes - 1} more serving process(es)` : ''}`);
            for (let next = 1; next < opts.processes; next++) fork(next);
          }
          if (readyCount === opts.processes && opts.processes > 1) opts.log(`serving from ${opts.processes} processes (all ready ${ms} ms after start)`);
        }
      });
      w.on('exit', (code, signal) => {
        // Exit code 0: it drained on a signal of its own (Ctrl-C reaches every process of a terminal).
        if (code === 0 && !failed) stop('a serving process stopped');
        if (!stopping && !failed) fail(`pifaas function: serving process ${slot} stopped (${signal ?? `exit code ${code}`}); stopping the function so that it is restarted whole`);
        if (workers.every((x) => x.isDead())) {
          rmSync(opts.boardDir, { recursive: true, force: true });
          resolve(failed ? 1 : 0);
        }
      });
    };
    fork(0);
  });
}

/** In a serving process: its slot on the shared board, or undefined when this is not one. */
export function servingProcessBoard(processes: number, env: NodeJS.ProcessEnv = process.env): InflightBoard | undefined {
  if (!cluster.isWorker) return undefined;
  const file = env[BOARD_ENV];
  if (!file) throw new Error(`a serving process needs ${BOARD_ENV}`);
  return InflightBoard.open(file, Number(env[SLOT_ENV]), processes);
}

/** In a serving process: start-up lines go to the parent (printed once for all processes). */
export function toParentLog(line: string): void {
  process.send?.({ kind: 'log', line } satisfies FromServingProcess);
}

/** In a serving process: ready to answer (`summary`: what it serves, for the parent's ready line). */
export function tellParentReady(functionName: string, summary: string): void {
  process.send?.({ kind: 'ready', functionName, summary } satisfies FromServingProcess);
}

/** In a serving process: it cannot serve (`line`: what main.ts would print); the parent prints it once and stops the function. */
export function tellParentFailed(line: string): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send?.({ kind: 'failed', message: line } satisfies FromServingProcess, undefined, {}, () => resolve())) resolve();
  });
}
