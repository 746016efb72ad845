// Both inference engines on x64: onnxruntime-web (WebAssembly, what armhf Pis run) must give the same
// answers as onnxruntime-node on every test photo and digit, and say which engine answered.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClassifier, type Classifier } from '../../src/function/classifier.js';
import { FunctionServer } from '../../src/function/function-server.js';
import { loadEngine, nodeEngineSupported } from '../../src/function/inference-engine.js';
import { parseUrlPolicy } from '../../src/function/url-policy.js';
import { DIGITS, getJson, image, PHOTOS, post } from './helpers.js';

describe('onnxruntime-web (WebAssembly) against onnxruntime-node', () => {
  const loaded: Classifier[] = [];
  let node: { resnet: Classifier; shuffle: Classifier; digits: Classifier };
  let web: { resnet: Classifier; shuffle: Classifier; digits: Classifier };
  beforeAll(async () => {
    const start = async (engine: 'node' | 'web') => {
      const resnet = await startClassifier({ name: 'faas-resnet', model: 'mobilenetv2-12-int8', engine });
      const shuffle = await startClassifier({ name: 'faas-resnet', model: 'shufflenet-v2-12-int8', engine });
      const digits = await startClassifier({ name: 'faas-digits', engine });
      loaded.push(resnet, shuffle, digits);
      return { resnet, shuffle, digits };
    };
    node = await start('node');
    web = await start('web');
  });
  afterAll(async () => {
    for (const c of loaded) await c.close();
  });

  it('auto picks onnxruntime-node on linux x64/arm64 and web elsewhere', async () => {
    expect(nodeEngineSupported('linux', 'x64')).toBe(true);
    expect(nodeEngineSupported('linux', 'arm64')).toBe(true);
    expect(nodeEngineSupported('linux', 'arm')).toBe(false);
    const auto = await loadEngine('auto');
    expect(auto.name).toBe(process.arch === 'x64' || process.arch === 'arm64' ? 'onnxruntime-node' : 'onnxruntime-web');
    expect(web.resnet.engine.name).toBe('onnxruntime-web');
    expect(node.resnet.engine.name).toBe('onnxruntime-node');
  });

  // INT8 kernels differ between the native and the WebAssembly builds, so probabilities move a little
  // (up to a few tens of points on coffee.png's close call); the answer, the top-1, must not.
  it.each(PHOTOS)('$file: the same top-1 on both engines (MobileNetV2 and ShuffleNet)', async ({ file, mobilenet, shufflenet }) => {
    for (const [n, w, expected] of [
      [node.resnet, web.resnet, mobilenet],
      [node.shuffle, web.shuffle, shufflenet],
    ] as const) {
      const a = await n.classify(image(file), { top: 3 });
      const b = await w.classify(image(file), { top: 3 });
      expect(b.engine).toBe('onnxruntime-web');
      expect(a.predictions[0]?.index).toBe(expected);
      expect(b.predictions[0]?.index).toBe(expected);
    }
  });

  it.each(DIGITS)('$file: the same digit on both engines', async ({ file, digit }) => {
    const a = await node.digits.classify(image(file));
    const b = await web.digits.classify(image(file));
    expect(a.predictions[0]?.index).toBe(digit);
    expect(b.predictions[0]?.index).toBe(digit);
  });

  it('reports the engine in /_/health and in every answer', async () => {
    const server = new FunctionServer({
      functionName: 'faas-resnet',
      readTimeoutMs: 10_000,
      writeTimeoutMs: 10_000,
      execTimeoutMs: 10_000,
      healthcheckIntervalMs: 0,
      maxInflight: 0,
      maxBodyBytes: 10 * 1024 * 1024,
      urlPolicy: parseUrlPolicy(undefined),
      urlTimeoutMs: 1000,
    });
    const { port } = await server.listen(0, '127.0.0.1');
    server.ready(web.resnet);
    try {
      const health = await getJson(`http://127.0.0.1:${port}/_/health`);
      expect(health.json.engine).toMatchObject({ name: 'onnxruntime-web', reason: 'PIFAAS_ENGINE=web' });
      const a = await post(`http://127.0.0.1:${port}`, '/function/faas-resnet', image('tiger.jpg'), 'image/jpeg');
      expect(a.json).toMatchObject({ engine: 'onnxruntime-web', model: 'mobilenetv2-12-int8' });
      expect((a.json as { predictions: Array<{ index: number }> }).predictions[0]?.index).toBe(292);
    } finally {
      await server.close();
    }
  });
});
