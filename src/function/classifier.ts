// Why: the heart of faas-resnet and faas-digits: load the function's model(s) from the catalog (with
// faas-resnet's fallback to the bundled MobileNetV2 when ResNet weights are missing and cannot be
// fetched), check each model against its catalog entry, warm it up, then classify image bytes with
// timings. Inference runs through a small queue, as many runs at once as the engine runs side by side
// (onnxruntime-node: inference threads, see inference-engine.ts), while decoding the next image
// overlaps the current runs.
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { DEFAULT_MAX_PIXELS } from './function-config.js';
import { FunctionError } from './function-error.js';
import { imageToTensor, readImageInfo, warmUpEnlargement, type ImageInfo, type ImageLimits } from './image-tensor.js';
import { startJpegDecoder } from './jpeg-decoder.js';
import { DEFAULT_INLINE_RUN_MAX_MS, loadEngine, type EngineChoice, type InferenceEngine, type ModelSession, type RunCounts, type RunThreads, type TensorInfo } from './inference-engine.js';
import { findModel, loadCatalog, tensorDimsOf, type Catalog, type FunctionName, type ModelEntry } from './model-catalog.js';
import { locateModel, pullModel } from './model-store.js';
import { loadLabels, topPredictions, type Label, type Prediction } from './predictions.js';
import type { InflightBoard } from './inflight-board.js';
import { TensorPool } from './tensor-pool.js';

export const DEFAULT_TOP = 5;

const TASK_NAMES = { imagenet: 'ImageNet', digits: 'digit' } as const;
const TASK_WITH_ARTICLE = { imagenet: 'an ImageNet', digits: 'a digit' } as const;

export interface LoadedModel {
  entry: ModelEntry;
  where: 'bundled' | 'cache';
  path: string;
  session: ModelSession;
  labels: Label[];
  /** The input tensor shape fed to the model (batch of one). */
  inputDims: number[];
  classes: number;
  loadMs: number;
}

export interface Classification {
  function: FunctionName;
  model: string;
  engine: string;
  predictions: Prediction[];
  image: Omit<ImageInfo, 'decoderPixels'>;
  timings: { decodeMs: number; preprocessMs: number; queueMs: number; inferenceMs: number; totalMs: number };
}

export interface ClassifyOptions {
  /** How many predictions to return (string from a query parameter, or a number). */
  top?: string | number;
  /** A model id this function has loaded (faas-digits: mnist-8 or digits-8x8). */
  model?: string;
  /** Aborted when the request's exec_timeout passes: skips work not started yet. */
  signal?: AbortSignal;
}

/** Limits concurrent session.run calls to what the engine runs side by side (the rest wait here, cancellable). */
class RunQueue {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/**
 * How long after requests last overlapped a run alone may go on the event loop again: twice the
 * longest run that goes there by default, so that under steady load (an overlap at least every run or
 * two) runs stay on inference threads. Meanwhile a request alone runs on a shared session, with a share
 * of the cores (a 1 s pause cost 9% of the requests/s of one client right after eight, ResNet-50).
 */
const OVERLAP_QUIET_MS = 2 * DEFAULT_INLINE_RUN_MAX_MS;

/**
 * Tells the session when a request is alone (RunOptions.alone): nothing else is between decode and
 * answer, and requests have not overlapped for OVERLAP_QUIET_MS. A run on the event loop hides the
 * requests that arrive meanwhile: they are read only after it, when nothing else may be in flight. So
 * after such a run the answer waits one turn of the event loop, which reads them, and a request that
 * starts in that turn counts as overlapping (its client cannot be the one waiting for that answer).
 * Without that, two clients can take turns running alone on the event loop instead of side by side
 * on inference threads (seen on a busy machine: 40 of 40 runs).
 */
class OverlapWatch {
  private inProgress = 0;
  private lastOverlap = -Infinity;
  private readingArrivals = false;

  /** `board`: with several serving processes, a request in flight in another one is an overlap too. */
  constructor(private readonly board?: InflightBoard) {}

  enter(): void {
    this.inProgress++;
    if (this.inProgress > 1 || this.readingArrivals || (this.board?.others ?? 0) > 0) this.lastOverlap = performance.now();
  }

  leave(): void {
    this.inProgress--;
  }

  /** After a run on the event loop: one turn of the loop, to read the requests that arrived meanwhile. */
  async readArrivals(): Promise<void> {
    this.readingArrivals = true;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.readingArrivals = false;
  }

  get alone(): boolean {
    if (this.inProgress !== 1 || performance.now() - this.lastOverlap < OVERLAP_QUIET_MS) return false;
    if ((this.board?.others ?? 0) === 0) return true;
    this.lastOverlap = performance.now();
    return false;
  }
}

function ms(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function shapeText(shape: readonly (number | string)[] | undefined): string {
  return shape ? `[${shape.join(',')}]` : '[?]';
}

/** The [1, ...] tensor shape the catalog's preprocessing produces for a model. */
export function inputDimsOf(entry: ModelEntry): number[] {
  return tensorDimsOf(entry.preprocessing);
}

function checkShape(entry: ModelEntry, dims: number[], input: TensorInfo): void {
  const shape = input.shape;
  if (!shape) return;
  const ok = shape.length === dims.length && shape.every((d, i) => typeof d !== 'number' || d === dims[i]);
  if (!ok) {
    throw new Error(`catalog preprocessing for ${entry.id} makes a ${shapeText(dims)} tensor, but the model's input ${input.name} is ${shapeText(shape)}`);
  }
}

/** Loads one model file into a session, checks it against its catalog entry and warms it up. */
export async function loadModel(engine: InferenceEngine, catalog: Catalog, entry: ModelEntry, location: { where: 'bundled' | 'cache'; path: string }): Promise<LoadedModel> {
  const t0 = performance.now();
  const [bytes, labels] = await Promise.all([readFile(location.path), loadLabels(catalog, entry)]);
  const session = await engine.createSession(bytes);
  const input = session.inputs[0];
  const output = session.outputs[0];
  if (!input || !output) throw new Error(`${entry.id}: the model has no input or output`);
  const inputDims = inputDimsOf(entry);
  checkShape(entry, inputDims, input);
  const last = output.shape?.[output.shape.length - 1];
  const classes = typeof last === 'number' ? last : labels.length;
  if (labels.length !== classes) throw new Error(`${entry.id}: the model has ${classes} classes but ${entry.labels.file} has ${labels.length} labels`);
  // Warm-up, before reporting healthy: a first run allocates and plans (on every session of the engine).
  const scores = await session.warmUp(inputDims);
  if (scores.length !== classes) throw new Error(`${entry.id}: the model returned ${scores.length} scores, expected ${classes}`);
  return { entry, where: location.where, path: location.path, session, labels, inputDims, classes, loadMs: performance.now() - t0 };
}

export interface ClassifierInfo {
  function: FunctionName;
  engine: { name: string; version: string; reason: string; parallelRuns: number };
  defaultModel: string;
  models: Array<{ id: string; where: string; file: string; input: TensorInfo; output: TensorInfo; classes: number; loadMs: number; threads: RunThreads; runs: RunCounts }>;
  notices: string[];
}

export class Classifier {
  private readonly queue: RunQueue;
  /** Input tensors, reused from request to request (tensor-pool.ts). */
  private readonly tensors: TensorPool;
  private readonly overlap: OverlapWatch;

  constructor(
    readonly name: FunctionName,
    readonly engine: InferenceEngine,
    readonly models: readonly LoadedModel[],
    readonly defaultModel: string,
    /** Things the operator should know, e.g. "serving the fallback model". */
    readonly notices: readonly string[] = [],
    inferenceConcurrency = 1,
    private readonly limits: ImageLimits = { maxPixels: DEFAULT_MAX_PIXELS },
    /** Given when the function serves from several processes: what the others have in flight. */
    board?: InflightBoard,
  ) {
    this.overlap = new OverlapWatch(board);
    this.queue = new RunQueue(Math.max(1, inferenceConcurrency));
    // Enough for the runs in progress and the requests being decoded meanwhile; more are collected.
    this.tensors = new TensorPool(Math.max(1, inferenceConcurrency) + 2);
  }

  info(): ClassifierInfo {
    return {
      function: this.name,
      engine: { name: this.engine.name, version: this.engine.version, reason: this.engine.reason, parallelRuns: this.engine.parallelRuns },
      defaultModel: this.defaultModel,
      models: this.models.map((m) => ({
        id: m.entry.id,
        where: m.where,
        file: m.path,
        input: m.session.inputs[0] as TensorInfo,
        output: m.session.outputs[0] as TensorInfo,
        classes: m.classes,
        loadMs: ms(m.loadMs),
        threads: m.session.threads,
        runs: { ...m.session.runs },
      })),
      notices: [...this.notices],
    };
  }

  /** Which loaded model answers: the one asked for, else (several loaded) the one whose input size is nearest the image's. */
  pickModel(image: ImageInfo, requested?: string): LoadedModel {
    if (requested !== undefined && requested !== '') {
      const m = this.models.find((x) => x.entry.id === requested);
      if (!m) {
        throw new FunctionError(400, 'unknown_model', `${this.name} does not serve model "${requested}"; it serves ${this.models.map((x) => x.entry.id).join(', ')}`);
      }
      return m;
    }
    if (this.models.length === 1) return this.models[0] as LoadedModel;
    const size = Math.max(image.width, image.height);
    let best = this.models.find((x) => x.entry.id === this.defaultModel) ?? (this.models[0] as LoadedModel);
    let bestDistance = Infinity;
    for (const m of this.models) {
      const r = m.entry.preprocessing.resize;
      const native = r.kind === 'center-crop' ? r.crop : Math.max(r.width, r.height);
      const distance = Math.abs(Math.log(size / native));
      if (distance < bestDistance) {
        best = m;
        bestDistance = distance;
      }
    }
    return best;
  }

  private parseTop(top: string | number | undefined, classes: number): number {
    if (top === undefined || top === '') return Math.min(DEFAULT_TOP, classes);
    const n = typeof top === 'number' ? top : /^\s*\d+\s*$/.test(top) ? Number(top) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > classes) {
      throw new FunctionError(400, 'bad_top', `top must be a whole number from 1 to ${classes}, not ${JSON.stringify(top)}`);
    }
    return n;
  }

  async classify(bytes: Buffer, opts: ClassifyOptions = {}): Promise<Classification> {
    this.overlap.enter();
    try {
      return await this.classifyImage(bytes, opts);
    } finally {
      this.overlap.leave();
    }
  }

  private async classifyImage(bytes: Buffer, opts: ClassifyOptions): Promise<Classification> {
    const t0 = performance.now();
    const info = await readImageInfo(bytes, this.limits);
    const model = this.pickModel(info, opts.model);
    const top = this.parseTop(opts.top, model.classes);
    const prepared = await imageToTensor(bytes, info, model.entry.preprocessing, this.limits, this.tensors);
    const queued = performance.now();
    let inferenceMs = 0;
    const scores = await this.queue.run(async () => {
      if (opts.signal?.aborted) {
        this.tensors.give(prepared.data);
        throw new FunctionError(504, 'exec_timeout', 'the request ran out of time before inference started');
      }
      const t = performance.now();
      let onEventLoop = false;
      const out = await model.session.run(prepared.data, prepared.dims, { pool: this.tensors, alone: this.overlap.alone, ranOnEventLoop: () => (onEventLoop = true) });
      inferenceMs = performance.now() - t;
      if (onEventLoop) await this.overlap.readArrivals();
      return out;
    });
    const queueMs = performance.now() - queued - inferenceMs;
    const predictions = topPredictions(scores, model.entry.postprocessing.softmax, model.labels, top);
    return {
      function: this.name,
      model: model.entry.id,
      engine: this.engine.name,
      predictions,
      image: { format: info.format, width: info.width, height: info.height },
      timings: {
        decodeMs: ms(prepared.decodeMs),
        preprocessMs: ms(prepared.preprocessMs),
        queueMs: ms(queueMs),
        inferenceMs: ms(inferenceMs),
        totalMs: ms(performance.now() - t0),
      },
    };
  }

  async close(): Promise<void> {
    for (const m of this.models) await m.session.release().catch(() => {});
  }
}

export interface StartClassifierOptions {
  name: FunctionName;
  /** PIFAAS_MODEL / --model: the model to serve (faas-digits: the only one to load). */
  model?: string;
  engine?: EngineChoice;
  modelsDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Start-up messages (one line each). */
  log?: (line: string) => void;
  maxPixels?: number;
  inferenceConcurrency?: number;
  /** Deadline for downloading a missing remote model at start-up. */
  downloadTimeoutMs?: number;
  /** Let onnxruntime-node's intra-op threads spin-wait (PIFAAS_ORT_SPINNING). */
  ortSpinning?: boolean;
  /** A run alone at most this long goes on the event loop (PIFAAS_INLINE_RUN_MAX; 0: never). */
  inlineRunMaxMs?: number;
  /** This process is one of several serving processes, sharing this board (serving-processes.ts). */
  board?: InflightBoard;
}

export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/**
 * Builds a function: loads the catalog, resolves which model(s) to serve, fetches a missing remote
 * model into the cache (falling back, for faas-resnet, to the bundled model), loads and warms them.
 */
export async function startClassifier(opts: StartClassifierOptions): Promise<Classifier> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});
  const catalog = await loadCatalog(opts.modelsDir);
  const fn = catalog.functions[opts.name];
  const requested = opts.model || undefined;
  let ids: string[];
  if (requested) {
    let entry: ModelEntry;
    try {
      entry = findModel(catalog, requested);
    } catch (e) {
      throw new StartupError((e as Error).message);
    }
    if (entry.task !== fn.task) {
      const fitting = catalog.models.filter((m) => m.task === fn.task).map((m) => m.id);
      throw new StartupError(`${opts.name} serves ${TASK_NAMES[fn.task]} models (${fitting.join(', ')}); ${requested} is ${TASK_WITH_ARTICLE[entry.task]} model`);
    }
    ids = [requested];
  } else {
    ids = fn.task === 'digits' ? fn.models : [fn.defaultModel];
  }
  const notices: string[] = [];
  const located: Array<{ entry: ModelEntry; where: 'bundled' | 'cache'; path: string }> = [];
  for (const id of ids) {
    const entry = findModel(catalog, id);
    let loc = await locateModel(catalog, entry, env);
    if (!loc && !entry.bundled) {
      try {
        const pulled = await pullModel(catalog, entry, {
          env,
          timeoutMs: opts.downloadTimeoutMs ?? 10 * 60_000,
          // Without network (a Pi on an isolated LAN) DNS may hang: fall back soon, not after minutes.
          headersTimeoutMs: 15_000,
          onProgress: (done) => {
            if (done === 0) log(`${entry.id} is neither bundled nor cached: downloading ${(entry.bytes / 1e6).toFixed(1)} MB into the cache`);
          },
        });
        loc = { where: pulled.where, path: pulled.path };
      } catch (e) {
        const fallback = fn.fallbackModel ? findModel(catalog, fn.fallbackModel) : undefined;
        const fallbackLoc = fallback ? await locateModel(catalog, fallback, env) : undefined;
        if (!fallback || !fallbackLoc) throw new StartupError(`${entry.id} is not available and cannot be downloaded: ${(e as Error).message}`);
        const line = `${entry.id} weights are not cached and cannot be fetched (${(e as Error).message.replace(/^downloading \S+ from \S+ failed: /, '')}); serving the bundled ${fallback.id} instead (run \`pifaas models pull ${entry.id}\` where there is network)`;
        log(line);
        notices.push(line);
        located.push({ entry: fallback, ...fallbackLoc });
        continue;
      }
    }
    if (!loc) {
      const missing = `the model file ${entry.file} of ${entry.id} is missing (or has the wrong size) in ${catalog.dir}`;
      // faas-digits serves whichever of its models an image carries; one missing is worth a line, not a stop.
      if (ids.length > 1) {
        log(`${missing}; serving without it`);
        notices.push(`${missing}; serving without it`);
        continue;
      }
      throw new StartupError(missing);
    }
    located.push({ entry, ...loc });
  }
  if (located.length === 0) throw new StartupError(`none of ${opts.name}'s models (${ids.join(', ')}) is in ${catalog.dir}`);
  // The WebAssembly JPEG decoder for small photos compiles and warms up (about 30 ms of this thread)
  // while the models load in their worker threads; should it fail, libvips decodes every image.
  const noise = { width: 64, height: 64, channels: 3 as const, background: '#808080', noise: { type: 'gaussian' as const, mean: 128, sigma: 50 } };
  const jpegDecoder = sharp({ create: noise })
    .jpeg()
    .toBuffer()
    .then(startJpegDecoder)
    .catch((e: Error) => log(`the WebAssembly JPEG decoder did not start (${e.message}); libvips decodes every image`));
  const engine = await loadEngine(opts.engine ?? 'auto', { spinning: opts.ortSpinning ?? false, ...(opts.inferenceConcurrency ? { parallelRuns: opts.inferenceConcurrency } : {}), ...(opts.inlineRunMaxMs !== undefined ? { inlineRunMaxMs: opts.inlineRunMaxMs } : {}), processes: opts.board?.slots ?? 1 });
  const models: LoadedModel[] = [];
  for (const l of located) models.push(await loadModel(engine, catalog, l.entry, l));
  const defaultModel = requested && models.some((m) => m.entry.id === requested) ? requested : models.find((m) => m.entry.id === fn.defaultModel)?.entry.id ?? (models[0] as LoadedModel).entry.id;
  const classifier = new Classifier(opts.name, engine, models, defaultModel, notices, engine.parallelRuns, { maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS }, opts.board);
  await warmUp(classifier);
  await jpegDecoder;
  return classifier;
}

/**
 * Runs one whole request per model (a synthetic JPEG through decode, resize, tensor, inference and
 * labels), and the enlargement kernel of small photos once, so the first real callers do not pay for
 * sharp's, the JIT's and the WebAssembly compiler's first use. (A second whole request with a small
 * photo cost more start-up time than it saved on the first request; measured 2026-12-05.)
 */
async function warmUp(classifier: Classifier): Promise<void> {
  for (const m of classifier.models) {
    const r = m.entry.preprocessing.resize;
    const [w, h] = r.kind === 'center-crop' ? [r.shorterSide + 32, r.shorterSide] : [r.width, r.height];
    const jpeg = await sharp({ create: { width: w, height: h, channels: 3, background: { r: 40, g: 90, b: 160 } } })
      .jpeg()
      .toBuffer();
    await classifier.classify(jpeg, { model: m.entry.id, top: 1 });
    warmUpEnlargement(m.entry.preprocessing);
  }
}
