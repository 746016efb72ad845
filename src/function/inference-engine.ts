// Why: the function must run where onnxruntime-node has native binaries (linux x64, arm64) and also
// on 32-bit ARM Pis where it has none, through onnxruntime-web's WebAssembly build. Both packages
// expose the same session API; this module picks one at start-up (PIFAAS_ENGINE=auto|node|web),
// imports it lazily (an armhf image need not even install onnxruntime-node) and hides the difference.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { usableCores } from './cpu-quota.js';
import { ownsWholeBuffer, type TensorPool } from './tensor-pool.js';

export type EngineChoice = 'auto' | 'node' | 'web';
export type EngineName = 'onnxruntime-node' | 'onnxruntime-web';

export interface TensorInfo {
  name: string;
  type: string | undefined;
  shape: readonly (number | string)[] | undefined;
}

export interface RunOptions {
  /** Given, the input's memory goes to it once the run is over (for the next request). */
  pool?: TensorPool;
  /**
   * The caller has nothing else in flight and has seen no overlapping requests lately: a short run
   * may go on the calling thread's event loop (see poolSession).
   */
  alone?: boolean;
  /** Called right after a run that went on the event loop, before its promise settles. */
  ranOnEventLoop?: () => void;
}

export interface ModelSession {
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  /** How many run() calls make progress at once (more are queued by the caller). */
  readonly parallelism: number;
  /**
   * Runs the graph on one float32 input and returns the first output's data. The session may take
   * ownership of `input` (its buffer is moved to an inference thread): do not use it afterwards.
   */
  run(input: Float32Array, dims: readonly number[], opts?: RunOptions): Promise<Float32Array>;
  /**
   * Runs every session of the model once on a zero input of `dims` (a first run allocates and plans),
   * and settles where a run alone goes. Call once, before run(); returns the first output.
   */
  warmUp(dims: readonly number[]): Promise<Float32Array>;
  /** How runs use the CPU (shown in /_/health). */
  readonly threads: RunThreads;
  /** Runs so far, by where they ran (shown in /_/health). */
  readonly runs: RunCounts;
  release(): Promise<void>;
}

export type RunPlace = 'event loop' | 'inference thread';

export interface RunThreads {
  /** onnxruntime intra-op threads of a run that starts while no other runs. */
  alone: number;
  /** Where such a run goes: the event loop (a short run, nothing else in flight) or an inference thread. */
  aloneOn: RunPlace;
  /** Runs side by side, and the intra-op threads of each. */
  sideBySide: { runs: number; threads: number };
}

export interface RunCounts {
  eventLoop: number;
  inferenceThreads: number;
  /** Of those, the runs alone, on a session with all cores. */
  allCores: number;
}

export interface InferenceEngine {
  readonly name: EngineName;
  readonly version: string;
  /** Why this engine was chosen (shown in /_/health). */
  readonly reason: string;
  /** How many inferences run side by side per model (onnxruntime-node: worker threads; onnxruntime-web: 1). */
  readonly parallelRuns: number;
  createSession(model: Uint8Array): Promise<ModelSession>;
}

/** The subset of onnxruntime-common both packages export. */
interface OrtModule {
  InferenceSession: {
    create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => unknown;
  env: { versions?: Record<string, string>; wasm?: { numThreads?: number } };
}
interface OrtValueMetadata {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: readonly (number | string)[];
}
interface OrtSession {
  inputNames: readonly string[];
  outputNames: readonly string[];
  inputMetadata?: readonly OrtValueMetadata[];
  outputMetadata?: readonly OrtValueMetadata[];
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown }>>;
  release(): Promise<void>;
}

function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Platforms for which the onnxruntime-node npm package carries CPU binaries. */
export function nodeEngineSupported(platform: string = process.platform, arch: string = process.arch): boolean {
  return (platform === 'linux' && (arch === 'x64' || arch === 'arm64')) || (platform === 'darwin' && (arch === 'x64' || arch === 'arm64')) || (platform === 'win32' && (arch === 'x64' || arch === 'arm64'));
}

export function parseEngineChoice(value: string | undefined): EngineChoice {
  const v = (value ?? 'auto').trim().toLowerCase() || 'auto';
  if (v === 'auto' || v === 'node' || v === 'web') return v;
  throw new Error(`PIFAAS_ENGINE must be auto, node or web, not "${value}"`);
}

function metadataOf(session: OrtSession, names: readonly string[], meta: readonly OrtValueMetadata[] | undefined): TensorInfo[] {
  return names.map((name) => {
    const m = meta?.find((x) => x.name === name);
    return { name, type: m?.type, shape: m?.shape };
  });
}

/**
 * A session on the calling thread. onnxruntime-node's run() computes there (its promise only defers
 * the call), so while it runs that thread's event loop stands still; onnxruntime-web's does too, its
 * intra-op threads being WebAssembly workers.
 */
async function eventLoopSession(ort: OrtModule, model: Uint8Array, sessionOptions: Record<string, unknown>, threads: number): Promise<ModelSession> {
  const session = await ort.InferenceSession.create(model, sessionOptions);
  const inputs = metadataOf(session, session.inputNames, session.inputMetadata);
  const outputs = metadataOf(session, session.outputNames, session.outputMetadata);
  const inputName = inputs[0]?.name;
  const outputName = outputs[0]?.name;
  if (!inputName || !outputName) throw new Error('the model has no input or no output');
  const runs: RunCounts = { eventLoop: 0, inferenceThreads: 0, allCores: 0 };
  const allCores = threads >= usableCores();
  async function infer(input: Float32Array, dims: readonly number[]): Promise<Float32Array> {
    const out = await session.run({ [inputName as string]: new ort.Tensor('float32', input, dims) });
    const data = out[outputName as string]?.data;
    if (!(data instanceof Float32Array)) throw new Error(`output ${outputName} is not a float32 tensor`);
    return data;
  }
  // Counts the runs asked for, not warm-up's (as the thread pool does).
  async function run(input: Float32Array, dims: readonly number[], opts: RunOptions = {}): Promise<Float32Array> {
    const out = await infer(input, dims);
    runs.eventLoop++;
    if (allCores) runs.allCores++;
    opts.pool?.give(input);
    return out;
  }
  return {
    inputs,
    outputs,
    parallelism: 1,
    threads: { alone: threads, aloneOn: 'event loop', sideBySide: { runs: 1, threads } },
    runs,
    run,
    warmUp: (dims) => infer(new Float32Array(elementCount(dims)), dims),
    release: () => session.release(),
  };
}

function wrap(ort: OrtModule, name: EngineName, reason: string, sessionOptions: Record<string, unknown>): InferenceEngine {
  const version = ort.env.versions?.[name === 'onnxruntime-node' ? 'node' : 'web'] ?? ort.env.versions?.common ?? 'unknown';
  const threads = ort.env.wasm?.numThreads ?? 1;
  return { name, version, reason, parallelRuns: 1, createSession: (model) => eventLoopSession(ort, model, sessionOptions, threads) };
}

/**
 * The inference thread's code (plain CommonJS: it runs as is under node, vitest and tsx). It loads
 * its own onnxruntime-node session of the model and runs one request at a time; results come back
 * by moving the output's buffer, not copying it, and the input's buffer comes back with them (reused
 * for a later request).
 */
const WORKER_SOURCE = `'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const message = (e) => String((e && e.message) || e).split('\\n')[0];
ort.InferenceSession.create(workerData.model, workerData.options).then(
  (session) => {
    const meta = (names, all) => names.map((name) => {
      const m = (all || []).find((x) => x.name === name);
      return { name, type: m && m.type, shape: m && m.shape ? Array.from(m.shape) : undefined };
    });
    const input = session.inputNames[0];
    const output = session.outputNames[0];
    parentPort.on('message', (m) => {
      session.run({ [input]: new ort.Tensor('float32', m.input, m.dims) }).then(
        (out) => {
          const data = out[output] && out[output].data;
          const back = m.input.byteLength > 0 && m.input.byteLength === m.input.buffer.byteLength ? [m.input.buffer] : [];
          if (data instanceof Float32Array) parentPort.postMessage({ data, input: back.length ? m.input : undefined }, [data.buffer, ...back]);
          else parentPort.postMessage({ error: 'output ' + output + ' is not a float32 tensor' });
        },
        (e) => parentPort.postMessage({ error: message(e) }),
      );
    });
    parentPort.postMessage({ ready: true, inputs: meta(session.inputNames, session.inputMetadata), outputs: meta(session.outputNames, session.outputMetadata) });
  },
  (e) => parentPort.postMessage({ error: message(e) }),
);
`;

interface WorkerReply {
  ready?: boolean;
  inputs?: TensorInfo[];
  outputs?: TensorInfo[];
  data?: Float32Array;
  /** The run's input, moved back. */
  input?: Float32Array;
  error?: string;
}

/** One inference thread: one run at a time; referenced (keeps the process alive) only while it runs. */
class InferenceThread {
  private pending: { resolve: (r: WorkerReply) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly worker: Worker;

  constructor(ortPath: string, model: Uint8Array, options: Record<string, unknown>) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath, model, options } });
    this.worker.on('message', (m: WorkerReply) => this.settle(m.error === undefined ? m : new Error(m.error)));
    this.worker.on('error', (e) => this.settle((this.failure = e)));
    this.worker.on('exit', (code) => this.settle((this.failure ??= new Error(`the inference thread exited (code ${code})`))));
  }

  private settle(r: WorkerReply | Error): void {
    const p = this.pending;
    this.pending = undefined;
    this.worker.unref();
    if (!p) return;
    if (r instanceof Error) p.reject(r);
    else p.resolve(r);
  }

  /** Sends a message (moving `transfer`) and waits for the thread's reply. */
  request(message: unknown, transfer: ArrayBuffer[] = []): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.ref();
      if (message !== undefined) this.worker.postMessage(message, transfer);
    });
  }

  async terminate(): Promise<void> {
    this.failure ??= new Error('the session was released');
    await this.worker.terminate();
  }
}

/** One run on one thread; the input is moved to the thread (and back, into `pool`). */
async function runOn(thread: InferenceThread, input: Float32Array, dims: readonly number[], pool?: TensorPool): Promise<Float32Array> {
  const reply = await thread.request({ input, dims }, ownsWholeBuffer(input) ? [input.buffer] : []);
  pool?.give(reply.input ?? input);
  if (!(reply.data instanceof Float32Array)) throw new Error('the model\'s output is not a float32 tensor');
  return reply.data;
}

/** The best of two more runs of a warmed-up session on the event loop: says whether its runs may hold it. */
async function bestOfTwoMs(session: ModelSession, dims: readonly number[]): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 2; i++) {
    const t0 = performance.now();
    await session.warmUp(dims);
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/** An inference thread with a session of the model, loaded and warmed with one run (terminated if that fails). */
async function startWarmThread(ortPath: string, model: Uint8Array, options: Record<string, unknown>, dims: readonly number[]): Promise<InferenceThread> {
  const thread = new InferenceThread(ortPath, model, options);
  try {
    await thread.request(undefined);
    await runOn(thread, new Float32Array(elementCount(dims)), dims);
  } catch (e) {
    await thread.terminate();
    throw e;
  }
  return thread;
}

/**
 * An onnxruntime-node session spread over threads. onnxruntime-node's session.run() computes
 * synchronously on the calling JavaScript thread (its promise only defers the call): run on the main
 * thread, an inference stops the function's event loop (no request is read, no finished decode is
 * picked up, no answer is sent) and no second inference can start.
 *
 * So runs side by side go to worker threads while the main thread decodes and answers: up to
 * `parallel` at once, each on a session with a share of the cores (cores / parallel threads), because
 * two sessions that both use all cores make their threads wait for each other (measured on 2 cores,
 * ResNet-50 FP32: 2 x 1 thread gives 1.1x the requests/s of 2 x 2 threads).
 *
 * A run alone (nothing else in flight) gets a "solo" session with all cores: the lowest latency. If
 * that run is short (at most `inlineRunMaxMs` at warm-up) and shared sessions exist to take overlapping
 * requests, the solo session lives on the main thread and a run alone goes on the event loop: no
 * hand-over to a worker and back, which is two thread wake-ups. (On the 2-vCPU development VM,
 * 2026-12-05, that took ResNet-50 FP32's HTTP p50 at c=1 from 1.19-1.23x the bare run to
 * 1.12-1.17x.) The caller says when a run is alone (RunOptions.alone); while it runs, the event loop
 * waits for at most that short run. Otherwise (a long run, or one core) the solo session is a worker
 * thread too. Either way: parallel + 1 copies of the weights, and warmUp() runs each session once.
 *
 * (Tried and left out, 2026-12-05: learning per model whether a run alone is faster on all cores or
 * on one. On 2 vCPUs ResNet-50 FP32 takes 25 ms on 2 threads and 41 ms on 1, MobileNetV2 INT8 2.4 and
 * 2.3 ms: all cores are right for the large model and within noise for the small one, and timing the
 * rarely used session in the function was biased against it (its thread and caches are cold).)
 */
/** Outside poolSession, so that no closure there holds on to the model's bytes after warm-up. */
function startThreads(ortPath: string, model: Uint8Array, options: Record<string, unknown>, count: number): InferenceThread[] {
  return Array.from({ length: count }, () => new InferenceThread(ortPath, model, options));
}

async function poolSession(ort: OrtModule, ortPath: string, model: Uint8Array, options: Record<string, unknown>, parallel: number, inlineRunMaxMs: number): Promise<ModelSession> {
  const cores = usableCores();
  const share = Math.max(1, Math.floor(cores / parallel));
  const shared = startThreads(ortPath, model, { ...options, intraOpNumThreads: share }, parallel > 1 ? parallel : 0);
  // Without shared sessions every overlapping run would wait for the event loop: the solo is a thread.
  let solo: InferenceThread | undefined = shared.length > 0 && inlineRunMaxMs > 0 ? undefined : new InferenceThread(ortPath, model, options);
  /** Kept until warm-up says whether the solo stays on the event loop (else it becomes a thread). */
  let soloModel: Uint8Array | undefined = solo ? undefined : model;
  const threads = (): InferenceThread[] => (solo ? [solo, ...shared] : shared);
  const releaseAll = async (): Promise<void> => {
    await Promise.all([inline?.release(), ...threads().map((t) => t.terminate())]);
  };
  const started = await Promise.allSettled([solo ? undefined : eventLoopSession(ort, model, options, cores), Promise.all(threads().map((t) => t.request(undefined)))]);
  let inline = started[0].status === 'fulfilled' ? started[0].value : undefined;
  const replies = started[1].status === 'fulfilled' ? started[1].value : [];
  const failed = started.find((r) => r.status === 'rejected');
  const inputs = inline?.inputs ?? replies[0]?.inputs ?? [];
  const outputs = inline?.outputs ?? replies[0]?.outputs ?? [];
  if (failed || !inputs[0] || !outputs[0]) {
    await releaseAll();
    throw failed ? (failed as PromiseRejectedResult).reason : new Error('the model has no input or no output');
  }
  const idleShared = [...shared];
  const waiting: Array<() => void> = [];
  const runs: RunCounts = { eventLoop: 0, inferenceThreads: 0, allCores: 0 };
  let active = 0;

  return {
    inputs,
    outputs,
    parallelism: parallel,
    get threads(): RunThreads {
      return { alone: cores, aloneOn: inline ? 'event loop' : 'inference thread', sideBySide: { runs: parallel, threads: shared.length > 0 ? share : cores } };
    },
    runs,
    async run(input, dims, opts = {}) {
      // A finishing run hands its slot straight to the first waiter (active stays as it is).
      if (active >= parallel) await new Promise<void>((resolve) => waiting.push(resolve));
      else active++;
      // Alone: the solo session (all cores). Beside others: a session with a share of the cores (at
      // most parallel - 1 others run, so one of the `parallel` shared sessions is idle).
      const onEventLoop = active === 1 && inline !== undefined && opts.alone === true;
      const thread = onEventLoop ? undefined : active === 1 && solo ? solo : (idleShared.pop() as InferenceThread);
      if (!thread || thread === solo) runs.allCores++;
      try {
        if (!thread) {
          runs.eventLoop++;
          const out = await (inline as ModelSession).run(input, dims, opts);
          opts.ranOnEventLoop?.();
          return out;
        }
        runs.inferenceThreads++;
        return await runOn(thread, input, dims, opts.pool);
      } finally {
        if (thread && thread !== solo) idleShared.push(thread);
        const next = waiting.shift();
        if (next) next();
        else active--;
      }
    },
    async warmUp(dims) {
      // Every session: a session's first run allocates and plans, and side-by-side runs must not pay for it.
      // Side by side: each session has its own thread, and a first run is mostly allocation.
      const zeros = () => new Float32Array(elementCount(dims));
      const [first] = await Promise.all([...(inline ? [inline.warmUp(dims)] : []), ...threads().map((t) => runOn(t, zeros(), dims))]);
      if (inline) {
        // The best of two more runs says whether a run alone may hold the event loop.
        if ((await bestOfTwoMs(inline, dims)) > inlineRunMaxMs && soloModel) {
          try {
            solo = await startWarmThread(ortPath, soloModel, options, dims);
          } catch (e) {
            await releaseAll();
            throw e;
          }
          await inline.release();
          inline = undefined;
        }
      }
      soloModel = undefined;
      return first as Float32Array;
    },
    release: releaseAll,
  };
}

/** Where a lane process's session runs: on the event loop, or (a run too long to hold it) on a thread. */
interface PlacedSession {
  readonly where: RunPlace;
  run(input: Float32Array, dims: readonly number[], pool?: TensorPool): Promise<Float32Array>;
  release(): Promise<void>;
}

/**
 * Makes a session of `threads` intra-op threads, warms it up, and keeps it on the event loop if the
 * best of two more runs takes at most `inlineRunMaxMs`; otherwise it moves to an inference thread.
 */
async function placeSession(ort: OrtModule, ortPath: string, model: Uint8Array, options: Record<string, unknown>, threads: number, dims: readonly number[], inlineRunMaxMs: number, made?: ModelSession): Promise<PlacedSession> {
  const opts = { ...options, intraOpNumThreads: threads };
  if (inlineRunMaxMs <= 0) await made?.release();
  else {
    const inline = made ?? (await eventLoopSession(ort, model, opts, threads));
    await inline.warmUp(dims);
    if ((await bestOfTwoMs(inline, dims)) <= inlineRunMaxMs) return { where: 'event loop', run: (input, d, pool) => inline.run(input, d, pool ? { pool } : {}), release: () => inline.release() };
    await inline.release();
  }
  const thread = await startWarmThread(ortPath, model, opts, dims);
  return { where: 'inference thread', run: (input, d, pool) => runOn(thread, input, d, pool), release: () => thread.terminate() };
}

/**
 * The session of one of several serving processes (serving-processes.ts, which says what that
 * gains). Each process reads, decodes and answers its own requests and runs one inference at a time,
 * on its own event loop: no run is handed to another thread and back. A run alone in the whole function (RunOptions.alone: the
 * classifier asks every process) gets a session with all cores, the lowest latency; any other run a
 * session with this process's share of them (cores / processes). Two copies of the weights per
 * process; a session whose run takes longer than inlineRunMaxMs lives on an inference thread.
 */
async function laneSession(ort: OrtModule, ortPath: string, model: Uint8Array, options: Record<string, unknown>, processes: number, inlineRunMaxMs: number): Promise<ModelSession> {
  const cores = usableCores();
  const share = Math.max(1, Math.floor(cores / processes));
  // The all-cores session, made here for the model's names and shapes; warmUp() places it.
  const first = await eventLoopSession(ort, model, { ...options, intraOpNumThreads: cores }, cores);
  const { inputs, outputs } = first;
  let bytes: Uint8Array | undefined = model;
  let solo: PlacedSession | undefined;
  let lane: PlacedSession | undefined;
  const runs: RunCounts = { eventLoop: 0, inferenceThreads: 0, allCores: 0 };
  return {
    inputs,
    outputs,
    parallelism: 1,
    get threads(): RunThreads {
      return { alone: cores, aloneOn: solo?.where ?? 'event loop', sideBySide: { runs: processes, threads: share } };
    },
    runs,
    async run(input, dims, opts = {}) {
      if (!solo || !lane) throw new Error('warmUp() must come before run()');
      // One run at a time (parallelism 1): the caller queues the others.
      const session = opts.alone === true ? solo : lane;
      if (session.where === 'event loop') runs.eventLoop++;
      else runs.inferenceThreads++;
      if (session === solo) runs.allCores++;
      const out = await session.run(input, dims, opts.pool);
      if (session === solo && session.where === 'event loop') opts.ranOnEventLoop?.();
      return out;
    },
    async warmUp(dims) {
      if (!bytes) throw new Error('warmUp() runs once');
      const model = bytes;
      bytes = undefined;
      solo = await placeSession(ort, ortPath, model, options, cores, dims, inlineRunMaxMs, first);
      try {
        lane = share === cores ? solo : await placeSession(ort, ortPath, model, options, share, dims, inlineRunMaxMs);
      } catch (e) {
        await solo.release();
        throw e;
      }
      return lane.run(new Float32Array(elementCount(dims)), dims);
    },
    async release() {
      // Before warmUp() placed it, the all-cores session is still `first`.
      await Promise.all([solo ? solo.release() : first.release(), lane !== solo ? lane?.release() : undefined]);
    },
  };
}

/** `processes` > 1: this is one of that many serving processes (laneSession); else one process runs `threads` runs side by side (poolSession). */
function nodeEngine(ort: OrtModule, reason: string, sessionOptions: Record<string, unknown>, threads: number, inlineRunMaxMs: number, processes: number): InferenceEngine {
  const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  return {
    name: 'onnxruntime-node',
    version: ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown',
    reason,
    parallelRuns: processes > 1 ? 1 : threads,
    createSession: (model) => (processes > 1 ? laneSession(ort, ortPath, model, sessionOptions, processes, inlineRunMaxMs) : poolSession(ort, ortPath, model, sessionOptions, threads, inlineRunMaxMs)),
  };
}

async function importNode(): Promise<OrtModule> {
  return (await import('onnxruntime-node')) as unknown as OrtModule;
}

async function importWeb(): Promise<OrtModule> {
  const ort = (await import('onnxruntime-web')) as unknown as OrtModule;
  // WebAssembly threads work under Node (worker_threads); one per core up to 4, as onnxruntime-web
  // does in cross-origin-isolated browsers. Must be set before the first session is created.
  if (ort.env.wasm) ort.env.wasm.numThreads = Math.max(1, Math.min(4, usableCores()));
  return ort;
}

/**
 * onnxruntime-node session options. By default intra-op threads do not spin-wait between runs: on a
 * Pi (or any small box) the function shares its cores with sharp's decoding of the next request, the
 * HTTP server and other containers, and spinning threads take the CPU those need (measured on 2 busy
 * cores: 1.2-3x more requests/s without spinning). A box that runs nothing else can turn spinning on
 * (PIFAAS_ORT_SPINNING=1) for a lower single-request latency with small models.
 *
 * The intra-op thread count is set, to the cores this process may use (usableCores: its CPUs, capped
 * by a container's CPU limit). onnxruntime's own default (its count of physical cores) can be lower
 * than the cores there are: on the 2-vCPU development VM it is 1, and ResNet-50 FP32 then takes 41 ms
 * alone instead of 25 ms with 2 threads (2026-12-05); and it ignores CPU limits.
 */
export function nodeSessionOptions(spinning = false, threads = usableCores()): Record<string, unknown> {
  return { graphOptimizationLevel: 'all', executionMode: 'sequential', intraOpNumThreads: threads, extra: { session: { intra_op: { allow_spinning: spinning ? '1' : '0' } } } };
}

/**
 * How long a run alone may hold the event loop (PIFAAS_INLINE_RUN_MAX): health checks and newly
 * arrived requests wait at most this long, far below any probe timeout.
 */
export const DEFAULT_INLINE_RUN_MAX_MS = 50;

/** Inferences run side by side per model by default: two, or one on a single core. */
export function defaultParallelRuns(): number {
  return Math.min(2, usableCores());
}

const WEB_OPTIONS = { graphOptimizationLevel: 'all', executionProviders: ['wasm'] };

/**
 * Loads the engine to use. `auto` takes onnxruntime-node where the npm package has binaries and
 * falls back to onnxruntime-web when it is missing or does not load; `node` and `web` insist.
 */
export async function loadEngine(choice: EngineChoice, opts: { spinning?: boolean; parallelRuns?: number; inlineRunMaxMs?: number; processes?: number } = {}): Promise<InferenceEngine> {
  const processes = Math.max(1, opts.processes ?? 1);
  const nodeOptions = nodeSessionOptions(opts.spinning);
  const inline = opts.inlineRunMaxMs ?? DEFAULT_INLINE_RUN_MAX_MS;
  const threads = Math.max(1, opts.parallelRuns ?? defaultParallelRuns());
  const platform = `${process.platform}/${process.arch}`;
  if (choice === 'web') return wrap(await importWeb(), 'onnxruntime-web', 'PIFAAS_ENGINE=web', WEB_OPTIONS);
  if (choice === 'node') return nodeEngine(await importNode(), 'PIFAAS_ENGINE=node', nodeOptions, threads, inline, processes);
  if (!nodeEngineSupported()) {
    return wrap(await importWeb(), 'onnxruntime-web', `auto: onnxruntime-node has no binaries for ${platform}`, WEB_OPTIONS);
  }
  try {
    return nodeEngine(await importNode(), `auto: native binaries for ${platform}`, nodeOptions, threads, inline, processes);
  } catch (e) {
    return wrap(await importWeb(), 'onnxruntime-web', `auto: onnxruntime-node did not load on ${platform} (${(e as Error).message.split('\n')[0]})`, WEB_OPTIONS);
  }
}
