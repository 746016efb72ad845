// Why: the function must stay close to the bare inference engine. In one run, on the same model and
// photo, this measures: bare onnxruntime-node session.run; the function's in-process handler
// (decode + preprocess + inference + answer); end-to-end HTTP latency at concurrency 1 (p50, p99)
// against the real function process (dist/function/main.js) and against a Node server that only reads
// the body and answers (the machine's HTTP floor); requests/s at concurrency 1, 2, 4, 8
// (autocannon); process start -> /_/health 200 for the bundled models, and the latency of the first
// 50 requests after it (a function scaled up from zero serves them at once). It prints the ratios the
// targets are stated in (HTTP p50 / bare run; throughput / (1000 / bare ms); decode+preprocess /
// inference), so noisy absolute numbers on a shared machine still compare within one run.
//
// Usage: npm run build && npx tsx bench/function-latency.ts [--models mobilenet,resnet50] [--photo tiger.jpg]
//        [--seconds 8] [--cache DIR] [--spinning] [--processes N]
//   --spinning: PIFAAS_ORT_SPINNING=1 for the function and the bare session
//   --processes N: PIFAAS_PROCESSES=N for the function (default: its own, one process; bench/serving-processes.ts compares)
// The FP32 ResNet-50-shaped graph (random weights, ~100 MB, not committed) is made on first use with
// /usr/bin/python3 ../shared/tools/make-torchvision-onnx.py (Debian: python3-torch python3-torchvision)
// into the cache dir (default /tmp/pifaas-bench).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { startClassifier, type Classifier } from '../src/function/classifier.js';
import { usableCores } from '../src/function/cpu-quota.js';
import { processTreeUsage } from './process-usage.js';
import { invokeFunction } from '../src/function/function-server.js';
import { imageToTensor, readImageInfo } from '../src/function/image-tensor.js';
import { nodeSessionOptions } from '../src/function/inference-engine.js';
import { parseUrlPolicy } from '../src/function/url-policy.js';

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED = path.resolve(REPO, '..', 'shared');
const MAIN_JS = path.join(REPO, 'dist', 'function', 'main.js');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

const MODELS = arg('models', 'mobilenet,resnet50').split(',');
const PHOTO = arg('photo', 'tiger.jpg');
const SECONDS = Number(arg('seconds', '8'));
const SPINNING = process.argv.includes('--spinning');
const PROCESSES = arg('processes', '');
const CACHE = path.resolve(arg('cache', process.env.PIFAAS_BENCH_CACHE ?? '/tmp/pifaas-bench'));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

function stats(samples: number[]): { mean: number; p50: number; p99: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { mean: s.reduce((a, b) => a + b, 0) / s.length, p50: percentile(s, 50), p99: percentile(s, 99), n: s.length };
}

/** Runs fn repeatedly for about `ms` milliseconds (at least `min` times) and returns each duration. */
async function timeLoop(ms: number, min: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end || out.length < min) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

/**
 * The bare engine on every core: one one-thread session per core, each on a worker thread of its own,
 * running the prepared tensor back to back. This is what the engine itself makes of the cores when it
 * always has a run waiting per core (no decoding, no HTTP), to set the function's requests/s at c=4
 * beside it as well as beside 1000 / bare p50 (the issue's reference: one run at a time).
 */
async function startSideBySideEngine(modelPath: string, data: Float32Array, dims: readonly number[]): Promise<{ cores: number; runsPerSecond(ms: number): Promise<number>; close(): Promise<void> }> {
  const source = `const { parentPort, workerData: w } = require('node:worker_threads');
const ort = require(w.ortPath);
ort.InferenceSession.create(w.modelPath, w.options).then(async (s) => {
  const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', w.data, w.dims) };
  for (let i = 0; i < 3; i++) await s.run(feeds);
  parentPort.on('message', async (ms) => {
    let runs = 0;
    const end = performance.now() + ms;
    while (performance.now() < end) { await s.run(feeds); runs++; }
    parentPort.postMessage(runs);
  });
  parentPort.postMessage('ready');
});`;
  const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  const workers = await Promise.all(
    Array.from({ length: usableCores() }, async () => {
      const w = new Worker(source, { eval: true, workerData: { ortPath, modelPath, options: nodeSessionOptions(SPINNING, 1), data: data.slice(), dims } });
      await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      return w;
    }),
  );
  return {
    cores: workers.length,
    async runsPerSecond(ms: number): Promise<number> {
      const t = performance.now();
      const runs = await Promise.all(workers.map((w) => new Promise<number>((resolve) => { w.once('message', resolve); w.postMessage(ms); })));
      return (1000 * runs.reduce((a, b) => a + b, 0)) / (performance.now() - t);
    },
    async close(): Promise<void> {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

function f(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

/** A models folder for the benchmark: the real catalog plus the random-weight FP32 ResNet-50. */
async function benchModelsDir(): Promise<string> {
  const dir = path.join(CACHE, 'models');
  await mkdir(dir, { recursive: true });
  const onnx = path.join(CACHE, 'resnet50-random.onnx');
  if (!existsSync(onnx)) {
    process.stderr.write(`making ${onnx} with ../shared/tools/make-torchvision-onnx.py (once)...\n`);
    const r = spawnSync('/usr/bin/python3', [path.join(SHARED, 'tools', 'make-torchvision-onnx.py'), CACHE, 'resnet50'], { stdio: 'inherit' });
    if (r.status !== 0 || !existsSync(onnx)) {
      throw new Error('could not make the ResNet-50 graph: install python3-torch and python3-torchvision (Debian) and re-run, or use --models mobilenet');
    }
  }
  const catalog = JSON.parse(await readFile(path.join(REPO, 'models', 'catalog.json'), 'utf8'));
  const mobilenet = catalog.models.find((m: { id: string }) => m.id === 'mobilenetv2-12-int8');
  const bytes = (await readFile(onnx)).length;
  if (!catalog.models.some((m: { id: string }) => m.id === 'resnet50-fp32-random')) {
    catalog.models.push({
      ...mobilenet,
      id: 'resnet50-fp32-random',
      file: 'resnet50-random.onnx',
      bytes,
      sha256: await sha256(onnx),
      source: { url: '../shared/tools/make-torchvision-onnx.py', note: 'torchvision resnet50, random weights, FP32, for benchmarks' },
      input: { name: 'data', type: 'float32', shape: ['N', 3, 224, 224] },
      output: { name: 'logits', shape: ['N', 1000] },
    });
  }
  await writeFile(path.join(dir, 'catalog.json'), JSON.stringify(catalog, null, 2));
  for (const file of ['mobilenetv2-12-int8.onnx', 'shufflenet-v2-12-int8.onnx', 'mnist-8.onnx', 'digits-8x8.onnx', 'imagenet-synset.txt', 'digits-labels.txt']) {
    if (!existsSync(path.join(dir, file))) await copyFile(path.join(REPO, 'models', file), path.join(dir, file));
  }
  if (!existsSync(path.join(dir, 'resnet50-random.onnx'))) await copyFile(onnx, path.join(dir, 'resnet50-random.onnx'));
  return dir;
}

interface FunctionProcess {
  proc: ChildProcess;
  port: number;
  /** Spawn to the first /_/health 200, in ms. */
  startMs: number;
  /** Resolves with the ms from spawn to every serving process ready. */
  allReady: Promise<number>;
}

function getStatus(port: number, p: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
  });
}

/**
 * Starts dist/function/main.js and waits for /_/health 200, timing it from spawn. `allReady` resolves
 * once every serving process is (the others start after the first is healthy, and their loading
 * would disturb the bare runs measured meanwhile).
 */
async function startFunction(env: NodeJS.ProcessEnv, port: number): Promise<FunctionProcess> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, [MAIN_JS], { env: { PATH: process.env.PATH, HOME: process.env.HOME, port: String(port), write_timeout: '120s', exec_timeout: '120s', ...(PROCESSES ? { PIFAAS_PROCESSES: PROCESSES } : {}), ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const allReady = new Promise<number>((resolve) => {
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      // One process says "ready in"; several, "serving from N processes" once the last one is.
      if (/serving from \d+ processes/.test(out) || (/ready in \d+ ms/.test(out) && !/more serving process/.test(out))) resolve(performance.now() - t0);
    });
  });
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the function exited with ${proc.exitCode}`);
    if ((await getStatus(port, '/_/health')) === 200) return { proc, port, startMs: performance.now() - t0, allReady };
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function stopFunction(fp: FunctionProcess): Promise<void> {
  const exited = new Promise((r) => fp.proc.once('exit', r));
  fp.proc.kill('SIGTERM');
  await exited;
}

let nextPort = 18600 + Math.floor(Math.random() * 1000);

/**
 * The machine's HTTP floor: a Node server in a process of its own that reads the body and answers a
 * small JSON document, nothing else. Its round trip is what any Node HTTP function costs on this
 * machine before it does any work (on a virtual machine, mostly waking the two processes' threads).
 */
const FLOOR_SERVER = `const http = require('node:http');
http.createServer((req, res) => {
  let bytes = 0;
  req.on('data', (c) => { bytes += c.length; });
  req.on('end', () => {
    const text = JSON.stringify({ bytes });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
    res.end(text);
  });
}).listen(Number(process.env.port), '127.0.0.1', () => process.stdout.write('listening\\n'));`;

async function startFloorServer(port: number): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['-e', FLOOR_SERVER], { env: { PATH: process.env.PATH, port: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`the floor server exited with ${code}`)));
    proc.stdout?.once('data', () => resolve());
  });
  return proc;
}

function postLatency(port: number, body: Buffer, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/function/faas-resnet', agent, headers: { 'content-type': 'image/jpeg', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface ModelReport {
  model: string;
  bare: ReturnType<typeof stats>;
  /** Bare runs interleaved with the throughput rounds. */
  bareThroughput: ReturnType<typeof stats>;
  bareDefaults: ReturnType<typeof stats>;
  /** Intra-op threads of the bare session (the faster of all cores and one, for this model). */
  bareThreads: number;
  handler: ReturnType<typeof stats>;
  decodePlusPre: number;
  inference: number;
  http: ReturnType<typeof stats>;
  /** Round trips to the floor server, interleaved with the others. */
  floor: ReturnType<typeof stats>;
  rps: Record<number, number>;
  /** CPU ms per bare run (this process, interleaved rounds) and per request of the function process at c=4. */
  bareCpuMs: number;
  c4CpuMs: number;
  /** Runs/s of one one-thread session per core side by side (startSideBySideEngine), interleaved rounds. */
  sideBySideRps: number;
  cores: number;
}

/**
 * Measures one model. The machine may be shared, so the measurements that are compared are
 * interleaved: each latency round takes one bare run, one in-process handler call and one HTTP
 * request; each throughput round takes a stretch of bare runs then autocannon at c = 1, 2, 4, 8.
 * Load from elsewhere then hits all of them alike and the ratios stay meaningful.
 */
async function benchModel(label: string, modelId: string, modelsDir: string, photo: Buffer): Promise<ModelReport> {
  process.stderr.write(`\n== ${label} (${modelId}) on ${PHOTO} ==\n`);
  const classifier: Classifier = await startClassifier({ name: 'faas-resnet', model: modelId, engine: 'node', modelsDir, ortSpinning: SPINNING });
  const loaded = classifier.models[0];
  if (!loaded) throw new Error('no model');
  const info = await readImageInfo(photo, { maxPixels: 50e6 });
  const prepared = await imageToTensor(photo, info, loaded.entry.preprocessing, { maxPixels: 50e6 });

  // Bare engine: an onnxruntime-node session of its own with the function's session options (the
  // ratios then show what the function adds), fed the already prepared tensor, at whichever intra-op
  // thread count is faster for one run of this model here: all cores (what the function uses for a
  // run alone) or one, so that the reference is the engine at its best.
  const candidates = [...new Set([usableCores(), 1])];
  const sessions = await Promise.all(candidates.map((t) => ort.InferenceSession.create(loaded.path, nodeSessionOptions(SPINNING, t))));
  const feeds = { [(sessions[0] as ort.InferenceSession).inputNames[0] as string]: new ort.Tensor('float32', prepared.data, prepared.dims) };
  const trial: number[][] = candidates.map(() => []);
  for (let i = 0; i < 3; i++) for (const s of sessions) await s.run(feeds);
  const trialEnd = performance.now() + 1500;
  while (performance.now() < trialEnd || (trial[0] as number[]).length < 10) {
    for (let k = 0; k < sessions.length; k++) {
      const t = performance.now();
      await (sessions[k] as ort.InferenceSession).run(feeds);
      (trial[k] as number[]).push(performance.now() - t);
    }
  }
  const trialP50 = trial.map((xs) => stats(xs).p50);
  const best = trialP50.indexOf(Math.min(...trialP50));
  const bareThreads = candidates[best] as number;
  const session = sessions[best] as ort.InferenceSession;
  for (const s of sessions) if (s !== session) await s.release();
  process.stderr.write(`bare session threads: ${candidates.map((t, k) => `${t} -> p50 ${f(trialP50[k] ?? NaN)} ms`).join(', ')}; using ${bareThreads}\n`);
  const bareOnce = () => session.run(feeds);
  // For reference, onnxruntime's default options (intra-op threads spin-wait between runs), measured
  // after the interleaved rounds.
  const defaults = await ort.InferenceSession.create(loaded.path);
  const defaultsOnce = () => defaults.run(feeds);
  // The function's in-process handler: request body -> answer, as the HTTP server calls it.
  const limits = { policy: parseUrlPolicy(undefined), timeoutMs: 1000, maxBytes: 10e6 };
  const query = new URLSearchParams();
  const timings: Array<{ d: number; i: number }> = [];
  const handlerOnce = async () => {
    const r = await invokeFunction(classifier, { body: photo, contentType: 'image/jpeg', query }, limits);
    timings.push({ d: r.timings.decodeMs + r.timings.preprocessMs, i: r.timings.inferenceMs });
  };
  // The real function process, over HTTP with a kept-alive connection.
  const fp = await startFunction({ PIFAAS_FUNCTION: 'faas-resnet', PIFAAS_MODEL: modelId, PIFAAS_MODELS_DIR: modelsDir, PIFAAS_ENGINE: 'node', PIFAAS_ORT_SPINNING: SPINNING ? '1' : '0' }, nextPort++);
  await fp.allReady;
  const health = (await (await fetch(`http://127.0.0.1:${fp.port}/_/health`)).json()) as { models: Array<{ threads?: unknown }> };
  process.stderr.write(`function process threads (after warm-up): ${JSON.stringify(health.models[0]?.threads)}\n`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const httpOnce = () => postLatency(fp.port, photo, agent);
  const floorPort = nextPort++;
  const floorServer = await startFloorServer(floorPort);
  const floorAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const floorOnce = () => postLatency(floorPort, photo, floorAgent);
  for (let i = 0; i < 5; i++) {
    await bareOnce();
    await floorOnce();
    await handlerOnce();
    await httpOnce();
  }
  timings.length = 0;

  const bareMs: number[] = [];
  const defaultsMs: number[] = [];
  const handlerMs: number[] = [];
  const httpMs: number[] = [];
  const floorMs: number[] = [];
  const timed = async (into: number[], fn: () => Promise<unknown>) => {
    const t = performance.now();
    await fn();
    into.push(performance.now() - t);
  };
  const end = performance.now() + SECONDS * 1000 * 1.5;
  while (performance.now() < end || bareMs.length < 20) {
    // The floor request follows a bare run as the function's request follows the handler's: both
    // find the machine just out of a run of the model.
    await timed(bareMs, bareOnce);
    floorMs.push(await floorOnce());
    await timed(handlerMs, handlerOnce);
    httpMs.push(await httpOnce());
  }
  agent.destroy();
  floorAgent.destroy();
  floorServer.kill();
  // Not interleaved: after each run, a spinning session's threads keep a core busy for a while, which
  // would slow down whatever the next measurement is (the in-process handler).
  for (let i = 0; i < 5; i++) await defaultsOnce();
  defaultsMs.push(...(await timeLoop(SECONDS * 200, 20, defaultsOnce)));
  await defaults.release();
  const bare = stats(bareMs);
  const bareDefaults = stats(defaultsMs);
  const handler = stats(handlerMs);
  const httpLat = stats(httpMs);
  const floor = stats(floorMs);
  const dp = stats(timings.map((t) => t.d)).p50;
  const inf = stats(timings.map((t) => t.i)).p50;
  process.stderr.write(`latency (n=${bare.n}, interleaved): bare p50 ${f(bare.p50)} ms; handler p50 ${f(handler.p50)} ms (decode+preprocess ${f(dp)}, inference ${f(inf)}); HTTP p50 ${f(httpLat.p50)} ms, p99 ${f(httpLat.p99)} ms; HTTP floor p50 ${f(floor.p50)} ms\n`);

  const rounds = 3;
  const slice = Math.max(1, Math.round(SECONDS / rounds));
  const bareRounds: number[] = [];
  const rpsRounds: Record<number, number[]> = { 1: [], 2: [], 4: [], 8: [] };
  let bareCpu = 0;
  let c4Cpu = 0;
  let c4Requests = 0;
  const sideBySide = await startSideBySideEngine(loaded.path, prepared.data, prepared.dims);
  const sideBySideRounds: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const cpu0 = process.cpuUsage();
    const bareLoop = await timeLoop(slice * 1000, 5, bareOnce);
    const cpu = process.cpuUsage(cpu0);
    bareCpu += (cpu.user + cpu.system) / 1000;
    bareRounds.push(...bareLoop);
    sideBySideRounds.push(await sideBySide.runsPerSecond(slice * 1000));
    for (const connections of [1, 2, 4, 8]) {
      // Long enough for every connection to complete several requests through the inference queue.
      const duration = Math.max(slice, Math.ceil((4 * connections * bare.p50) / 1000));
      const before = (await processTreeUsage(fp.proc.pid ?? 0)).cpuMs;
      const res = await autocannon({ url: `http://127.0.0.1:${fp.port}/function/faas-resnet`, method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photo, connections, duration, timeout: 60 });
      if (connections === 4) {
        c4Cpu += (await processTreeUsage(fp.proc.pid ?? 0)).cpuMs - before;
        c4Requests += res.requests.total;
      }
      if (res.non2xx || res.errors) process.stderr.write(`  warning: c=${connections}: ${res.non2xx} non-2xx, ${res.errors} errors\n`);
      rpsRounds[connections]?.push(res.requests.average);
    }
  }
  const rps: Record<number, number> = {};
  for (const c of [1, 2, 4, 8]) rps[c] = (rpsRounds[c] ?? []).reduce((a, b) => a + b, 0) / rounds;
  const bareThroughput = stats(bareRounds);
  const bareCpuMs = bareCpu / bareRounds.length;
  const c4CpuMs = c4Cpu / c4Requests;
  await sideBySide.close();
  const sideBySideRps = sideBySideRounds.reduce((a, b) => a + b, 0) / rounds;
  process.stderr.write(`throughput (${rounds} interleaved rounds): bare p50 ${f(bareThroughput.p50)} ms; ${[1, 2, 4, 8].map((c) => `c=${c} ${f(rps[c] ?? NaN, 1)} req/s`).join(', ')}\n`);
  process.stderr.write(`CPU per request: bare run ${f(bareCpuMs)} ms; function at c=4 ${f(c4CpuMs)} ms\n`);
  process.stderr.write(`bare engine, ${sideBySide.cores} one-thread sessions side by side: ${sideBySideRounds.map((x) => f(x, 1)).join(', ')} runs/s\n`);
  await stopFunction(fp);
  await session.release();
  await classifier.close();

  return { model: modelId, bare, bareThroughput, bareDefaults, bareThreads, handler, decodePlusPre: dp, inference: inf, http: httpLat, floor, rps, bareCpuMs, c4CpuMs, sideBySideRps, cores: sideBySide.cores };
}

interface StartFigures {
  what: string;
  /** Spawn to /_/health 200, per start. */
  ms: number[];
  /** Spawn to every serving process ready, per start. */
  allMs: number[];
  /** faas-resnet: HTTP latency of the photo's first requests after /_/health 200, per start. */
  first?: Array<{ first: number; next9: number; then40: number }>;
}

/** The requests after a start that the start figures follow: the first, the 2nd-10th, the 11th-50th. */
const FIRST_REQUESTS = 50;

async function startupTimes(photo: Buffer): Promise<StartFigures[]> {
  const out: StartFigures[] = [];
  const cases: Array<[string, NodeJS.ProcessEnv]> = [
    ['faas-resnet mobilenetv2-12-int8', { PIFAAS_FUNCTION: 'faas-resnet', PIFAAS_MODEL: 'mobilenetv2-12-int8' }],
    ['faas-resnet shufflenet-v2-12-int8', { PIFAAS_FUNCTION: 'faas-resnet', PIFAAS_MODEL: 'shufflenet-v2-12-int8' }],
    ['faas-digits mnist-8 + digits-8x8', { PIFAAS_FUNCTION: 'faas-digits' }],
    ['faas-resnet mobilenetv2 (web engine)', { PIFAAS_FUNCTION: 'faas-resnet', PIFAAS_MODEL: 'mobilenetv2-12-int8', PIFAAS_ENGINE: 'web' }],
  ];
  for (const [what, env] of cases) {
    const figures: StartFigures = { what, ms: [], allMs: [] };
    for (let i = 0; i < 3; i++) {
      const fp = await startFunction(env, nextPort++);
      figures.ms.push(fp.startMs);
      if (env.PIFAAS_FUNCTION === 'faas-resnet') {
        // A function scaled up from zero answers its first callers at once: what do they wait?
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const lat: number[] = [];
        for (let k = 0; k < FIRST_REQUESTS; k++) lat.push(await postLatency(fp.port, photo, agent));
        agent.destroy();
        (figures.first ??= []).push({ first: lat[0] as number, next9: stats(lat.slice(1, 10)).p50, then40: stats(lat.slice(10)).p50 });
      }
      figures.allMs.push(await fp.allReady);
      await stopFunction(fp);
    }
    out.push(figures);
    const first = figures.first ? `; first requests (1st / 2nd-10th p50 / 11th-50th p50): ${figures.first.map((x) => `${f(x.first)}/${f(x.next9)}/${f(x.then40)}`).join(', ')} ms` : '';
    process.stderr.write(`start -> /_/health 200, ${what}: ${figures.ms.map((m) => f(m, 0)).join(', ')} ms (every serving process ready: ${figures.allMs.map((m) => f(m, 0)).join(', ')} ms)${first}\n`);
  }
  return out;
}

async function main(): Promise<void> {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run npm run build first`);
  const photo = await readFile(path.join(SHARED, 'testdata', 'images', PHOTO));
  await mkdir(CACHE, { recursive: true });
  const modelsDir = MODELS.includes('resnet50') ? await benchModelsDir() : path.join(REPO, 'models');
  const reports: Array<[string, ModelReport]> = [];
  for (const m of MODELS) {
    if (m === 'mobilenet') reports.push(['MobileNetV2 INT8', await benchModel('MobileNetV2 INT8', 'mobilenetv2-12-int8', modelsDir, photo)]);
    else if (m === 'resnet50') reports.push(['ResNet-50 FP32', await benchModel('ResNet-50 FP32 (random weights)', 'resnet50-fp32-random', modelsDir, photo)]);
    else throw new Error(`unknown model "${m}" (mobilenet, resnet50)`);
  }
  const starts = await startupTimes(photo);

  const lines: string[] = [];
  lines.push(`\npifaas function benchmark: photo ${PHOTO}, ${SECONDS} s per load level, onnxruntime threads ${SPINNING ? 'spinning' : 'not spinning'}, serving processes ${PROCESSES || 1}, node ${process.version}, ${process.platform}/${process.arch}`);
  lines.push('model              bare p50   handler p50  HTTP p50  HTTP p99  HTTP/bare  dec+pre/inf  rps c=1  c=2     c=4     c=8     c4/bare');
  for (const [label, r] of reports) {
    const bareRps = 1000 / r.bareThroughput.p50;
    lines.push(
      [
        label.padEnd(18),
        `${f(r.bare.p50)} ms`.padEnd(10),
        `${f(r.handler.p50)} ms`.padEnd(12),
        `${f(r.http.p50)} ms`.padEnd(9),
        `${f(r.http.p99)} ms`.padEnd(9),
        `${f(r.http.p50 / r.bare.p50)}x`.padEnd(10),
        `${f((100 * r.decodePlusPre) / r.inference, 0)}%`.padEnd(12),
        f(r.rps[1] ?? NaN, 1).padEnd(8),
        f(r.rps[2] ?? NaN, 1).padEnd(7),
        f(r.rps[4] ?? NaN, 1).padEnd(7),
        f(r.rps[8] ?? NaN, 1).padEnd(7),
        `${f((r.rps[4] ?? NaN) / bareRps)}x`,
      ].join(' '),
    );
  }
  lines.push('targets: ResNet-50 HTTP p50 <= 1.15x bare; MobileNetV2 decode+preprocess <= 50% of inference; c=4 throughput >= 0.9x bare (1000 / bare p50 ms)');
  lines.push('throughput ratios per concurrency (req/s / (1000 / bare p50 of the bare runs interleaved with the autocannon rounds)):');
  for (const [label, r] of reports) {
    const bareRps = 1000 / r.bareThroughput.p50;
    lines.push(`  ${label}: bare ${f(bareRps, 1)} req/s; ${[1, 2, 4, 8].map((c) => `c=${c} ${f((r.rps[c] ?? NaN) / bareRps)}x`).join(', ')}`);
    lines.push(`  ${label}: bare session on ${r.bareThreads} intra-op thread(s) (the faster for one run); with onnxruntime's default options (its thread count, spinning): p50 ${f(r.bareDefaults.p50)} ms`);
    lines.push(`  ${label}: HTTP floor (a Node server that only reads the body and answers, same photo, same rounds) p50 ${f(r.floor.p50)} ms; (HTTP p50 - floor p50) / bare p50 = ${f((r.http.p50 - r.floor.p50) / r.bare.p50)}x`);
    lines.push(`  ${label}: bare engine with a run always waiting on each of the ${r.cores} cores (one one-thread session per core, no decoding, no HTTP): ${f(r.sideBySideRps, 1)} runs/s = ${f(r.sideBySideRps / bareRps)}x 1000 / bare p50; the function at c=4 = ${f((r.rps[4] ?? NaN) / r.sideBySideRps)}x of it`);
    lines.push(`  ${label}: CPU time per bare run ${f(r.bareCpuMs)} ms (${f(r.bareCpuMs / r.bareThroughput.p50)} cores busy); per function request at c=4 ${f(r.c4CpuMs)} ms (decode, preprocessing, HTTP and inference)`);
  }
  lines.push('process start -> /_/health 200 (dist/function/main.js, 3 starts each):');
  for (const s of starts) lines.push(`  ${s.what}: ${s.ms.map((m) => `${f(m, 0)} ms`).join(', ')} (median ${f(stats(s.ms).p50, 0)} ms; every serving process ready: median ${f(stats(s.allMs).p50, 0)} ms)`);
  lines.push(`first requests after /_/health 200 (${PHOTO} over HTTP, one connection; medians of the 3 starts):`);
  for (const { what, first } of starts) {
    if (!first) continue;
    const med = (k: 'first' | 'next9' | 'then40') => f(stats(first.map((x) => x[k])).p50);
    lines.push(`  ${what}: 1st ${med('first')} ms; 2nd-10th p50 ${med('next9')} ms; 11th-50th p50 ${med('then40')} ms`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
