// Why: the function must run where onnxruntime-node has native binaries (linux x64, arm64) and also
// on 32-bit ARM Pis where it has none, through onnxruntime-web's WebAssembly build. Both packages
// expose the same session API; this module picks one at start-up (PIFAAS_ENGINE=auto|node|web),
// imports it lazily (an armhf image need not even install onnxruntime-node) and hides the difference.
import os from 'node:os';

export type EngineChoice = 'auto' | 'node' | 'web';
export type EngineName = 'onnxruntime-node' | 'onnxruntime-web';

export interface TensorInfo {
  name: string;
  type: string | undefined;
  shape: readonly (number | string)[] | undefined;
}

export interface ModelSession {
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  /** Runs the graph on one float32 input and returns the first output's data. */
  run(input: Float32Array, dims: readonly number[]): Promise<Float32Array>;
  release(): Promise<void>;
}

export interface InferenceEngine {
  readonly name: EngineName;
  readonly version: string;
  /** Why this engine was chosen (shown in /_/health). */
  readonly reason: string;
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

function wrap(ort: OrtModule, name: EngineName, reason: string, sessionOptions: Record<string, unknown>): InferenceEngine {
  const version = ort.env.versions?.[name === 'onnxruntime-node' ? 'node' : 'web'] ?? ort.env.versions?.common ?? 'unknown';
  return {
    name,
    version,
    reason,
    async createSession(model) {
      const session = await ort.InferenceSession.create(model, sessionOptions);
      const inputs = metadataOf(session, session.inputNames, session.inputMetadata);
      const outputs = metadataOf(session, session.outputNames, session.outputMetadata);
      const inputName = inputs[0]?.name;
      const outputName = outputs[0]?.name;
      if (!inputName || !outputName) throw new Error('the model has no input or no output');
      return {
        inputs,
        outputs,
        async run(input, dims) {
          const out = await session.run({ [inputName]: new ort.Tensor('float32', input, dims) });
          const data = out[outputName]?.data;
          if (!(data instanceof Float32Array)) throw new Error(`output ${outputName} is not a float32 tensor`);
          return data;
        },
        release: () => session.release(),
      };
    },
  };
}

async function importNode(): Promise<OrtModule> {
  return (await import('onnxruntime-node')) as unknown as OrtModule;
}

async function importWeb(): Promise<OrtModule> {
  const ort = (await import('onnxruntime-web')) as unknown as OrtModule;
  // WebAssembly threads work under Node (worker_threads); one per core up to 4, as onnxruntime-web
  // does in cross-origin-isolated browsers. Must be set before the first session is created.
  if (ort.env.wasm) ort.env.wasm.numThreads = Math.max(1, Math.min(4, os.availableParallelism()));
  return ort;
}

/**
 * onnxruntime-node session options. By default intra-op threads do not spin-wait between runs: on a
 * Pi (or any small box) the function shares its cores with sharp's decoding of the next request, the
 * HTTP server and other containers, and spinning threads take the CPU those need (measured on 2 busy
 * cores: 1.2-3x more requests/s without spinning). A box that runs nothing else can turn spinning on
 * (PIFAAS_ORT_SPINNING=1) for a lower single-request latency with small models.
 */
export function nodeSessionOptions(spinning = false): Record<string, unknown> {
  return { graphOptimizationLevel: 'all', executionMode: 'sequential', extra: { session: { intra_op: { allow_spinning: spinning ? '1' : '0' } } } };
}

const WEB_OPTIONS = { graphOptimizationLevel: 'all', executionProviders: ['wasm'] };

/**
 * Loads the engine to use. `auto` takes onnxruntime-node where the npm package has binaries and
 * falls back to onnxruntime-web when it is missing or does not load; `node` and `web` insist.
 */
export async function loadEngine(choice: EngineChoice, opts: { spinning?: boolean } = {}): Promise<InferenceEngine> {
  const nodeOptions = nodeSessionOptions(opts.spinning);
  const platform = `${process.platform}/${process.arch}`;
  if (choice === 'web') return wrap(await importWeb(), 'onnxruntime-web', 'PIFAAS_ENGINE=web', WEB_OPTIONS);
  if (choice === 'node') return wrap(await importNode(), 'onnxruntime-node', 'PIFAAS_ENGINE=node', nodeOptions);
  if (!nodeEngineSupported()) {
    return wrap(await importWeb(), 'onnxruntime-web', `auto: onnxruntime-node has no binaries for ${platform}`, WEB_OPTIONS);
  }
  try {
    return wrap(await importNode(), 'onnxruntime-node', `auto: native binaries for ${platform}`, nodeOptions);
  } catch (e) {
    return wrap(await importWeb(), 'onnxruntime-web', `auto: onnxruntime-node did not load on ${platform} (${(e as Error).message.split('\n')[0]})`, WEB_OPTIONS);
  }
}
