// The model catalog against the real files: checksums, sizes, tensor names and shapes read from
// onnxruntime sessions, label counts; plus the env configuration the container reads.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { inputDimsOf } from '../../src/function/classifier.js';
import { functionConfigFromEnv } from '../../src/function/function-config.js';
import { parseGoDuration } from '../../src/function/go-duration.js';
import { loadEngine } from '../../src/function/inference-engine.js';
import { defaultModelsDir, loadCatalog } from '../../src/function/model-catalog.js';
import { sha256File } from '../../src/function/model-store.js';
import { loadLabels } from '../../src/function/predictions.js';
import { SHARED } from './helpers.js';

describe('models/catalog.json', () => {
  it('lists every bundled file with its real size and sha256, and every label file matches the class count', async () => {
    const catalog = await loadCatalog(defaultModelsDir());
    const bundled = catalog.models.filter((m) => m.bundled).map((m) => m.id);
    expect(bundled.sort()).toEqual(['digits-8x8', 'mnist-8', 'mobilenetv2-12-int8', 'shufflenet-v2-12-int8']);
    for (const m of catalog.models.filter((x) => x.bundled)) {
      const file = path.join(catalog.dir, m.file);
      expect((await readFile(file)).length, m.id).toBe(m.bytes);
      expect(await sha256File(file), m.id).toBe(m.sha256);
    }
    for (const m of catalog.models) {
      const labels = await loadLabels(catalog, m);
      expect(labels.length, m.id).toBe(m.task === 'imagenet' ? 1000 : 10);
    }
  });

  it('has the ONNX Model Zoo size and sha256 for the remote ResNets (as recorded in ../shared/models/PROVENANCE.md)', async () => {
    const catalog = await loadCatalog(defaultModelsDir());
    const provenance = await readFile(path.join(SHARED, 'models', 'PROVENANCE.md'), 'utf8');
    for (const id of ['resnet50-v1-12-int8', 'resnet50-v2-7']) {
      const m = catalog.models.find((x) => x.id === id);
      expect(m?.bundled).toBe(false);
      expect(provenance).toContain(`| ${m?.file} | ${m?.bytes} | ${m?.sha256} |`);
      expect(m?.source.url).toMatch(/^https:\/\/github\.com\/onnx\/models\//);
    }
    expect(catalog.functions['faas-resnet']).toMatchObject({ defaultModel: 'resnet50-v1-12-int8', fallbackModel: 'mobilenetv2-12-int8' });
  });

  it('names the tensors and shapes the sessions report, and its preprocessing produces the input shape', async () => {
    const catalog = await loadCatalog(defaultModelsDir());
    const engine = await loadEngine('node');
    for (const m of catalog.models.filter((x) => x.bundled)) {
      const session = await engine.createSession(await readFile(path.join(catalog.dir, m.file)));
      try {
        expect(session.inputs.map((i) => i.name), m.id).toEqual([m.input.name]);
        expect(session.outputs.map((o) => o.name), m.id).toEqual([m.output.name]);
        expect(session.inputs[0]?.shape, m.id).toEqual(m.input.shape);
        expect(session.outputs[0]?.shape, m.id).toEqual(m.output.shape);
        const dims = inputDimsOf(m);
        const shape = session.inputs[0]?.shape ?? [];
        expect(shape.map((d, i) => (typeof d === 'number' ? d : dims[i])), m.id).toEqual(dims);
      } finally {
        await session.release();
      }
    }
  });

  it('rejects a malformed catalog with a message naming the problem', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pifaas-catalog-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const good = JSON.parse(await readFile(path.join(defaultModelsDir(), 'catalog.json'), 'utf8'));
    const dup = { ...good, models: [...good.models, good.models[0]] };
    await writeFile(path.join(dir, 'catalog.json'), JSON.stringify(dup));
    await expect(loadCatalog(dir)).rejects.toThrow(/model id "resnet50-v1-12-int8" is listed twice/);
    const badRef = { ...good, functions: { ...good.functions, 'faas-digits': { ...good.functions['faas-digits'], defaultModel: 'nope' } } };
    await writeFile(path.join(dir, 'catalog.json'), JSON.stringify(badRef));
    await expect(loadCatalog(dir)).rejects.toThrow(/faas-digits names model "nope", which is not in the catalog/);
    await writeFile(path.join(dir, 'catalog.json'), '{"schemaVersion": 1,');
    await expect(loadCatalog(dir)).rejects.toThrow(/is not valid JSON/);
    await expect(loadCatalog(path.join(dir, 'missing'))).rejects.toThrow(/cannot read the model catalog .*PIFAAS_MODELS_DIR/);
  });
});

describe('function configuration from the environment', () => {
  it('parses Go durations and bare seconds like of-watchdog', () => {
    expect(parseGoDuration('60s')).toBe(60_000);
    expect(parseGoDuration('1m30s')).toBe(90_000);
    expect(parseGoDuration('500ms')).toBe(500);
    expect(parseGoDuration('1.5h')).toBe(5_400_000);
    expect(parseGoDuration('15')).toBe(15_000);
    expect(parseGoDuration('0')).toBe(0);
    expect(() => parseGoDuration('10 seconds')).toThrow(/not a duration/);
    expect(() => parseGoDuration('-5s')).toThrow(/negative/);
  });

  it('has of-watchdog defaults and reads every variable', () => {
    const d = functionConfigFromEnv({});
    expect(d).toMatchObject({
      functionName: 'faas-resnet',
      model: undefined,
      engine: 'auto',
      port: 8080,
      readTimeoutMs: 10_000,
      writeTimeoutMs: 10_000,
      execTimeoutMs: 10_000,
      maxInflight: 0,
      maxBodyBytes: 10 * 1024 * 1024,
      inferenceConcurrency: Math.min(2, os.availableParallelism()),
      ortSpinning: false,
      inlineRunMaxMs: 50,
    });
    expect(d.urlPolicy.enabled).toBe(false);
    expect(d.modelsDir).toBe(defaultModelsDir());
    const c = functionConfigFromEnv({
      PIFAAS_FUNCTION: 'faas-digits',
      PIFAAS_MODEL: 'digits-8x8',
      PIFAAS_ENGINE: 'web',
      PIFAAS_MODELS_DIR: '/opt/models',
      port: '9090',
      max_inflight: '4',
      read_timeout: '5s',
      write_timeout: '1m',
      exec_timeout: '45s',
      PIFAAS_MAX_BODY_BYTES: '1000',
      PIFAAS_URL_ALLOW: 'images.example.com',
      PIFAAS_ORT_SPINNING: '1',
      PIFAAS_INFERENCE_CONCURRENCY: '3',
      PIFAAS_INLINE_RUN_MAX: '20ms',
    });
    expect(c.inlineRunMaxMs).toBe(20);
    expect(c.ortSpinning).toBe(true);
    expect(c.inferenceConcurrency).toBe(3);
    expect(c).toMatchObject({ functionName: 'faas-digits', model: 'digits-8x8', engine: 'web', modelsDir: '/opt/models', port: 9090, maxInflight: 4, readTimeoutMs: 5000, writeTimeoutMs: 60_000, execTimeoutMs: 45_000, maxBodyBytes: 1000 });
    expect(c.urlPolicy.enabled).toBe(true);
  });

  it('refuses bad values with the variable named', () => {
    expect(() => functionConfigFromEnv({ PIFAAS_FUNCTION: 'faas-cats' })).toThrow(/PIFAAS_FUNCTION must be faas-resnet or faas-digits, not "faas-cats"/);
    expect(() => functionConfigFromEnv({ PIFAAS_ENGINE: 'gpu' })).toThrow(/PIFAAS_ENGINE must be auto, node or web/);
    expect(() => functionConfigFromEnv({ PIFAAS_PROCESSES: '65' })).toThrow('PIFAAS_PROCESSES must be a whole number from 1 to 64, not "65"');
    expect(() => functionConfigFromEnv({ exec_timeout: 'soon' })).toThrow(/exec_timeout: "soon" is not a duration/);
    expect(() => functionConfigFromEnv({ PIFAAS_INLINE_RUN_MAX: '50x' })).toThrow(/PIFAAS_INLINE_RUN_MAX: "50x" is not a duration/);
    expect(() => functionConfigFromEnv({ max_inflight: '-1' })).toThrow(/max_inflight must be a whole number/);
    expect(() => functionConfigFromEnv({ write_timeout: '0s' })).toThrow(/write_timeout must be more than 0s/);
    expect(() => functionConfigFromEnv({ PIFAAS_URL_ALLOW: 'http://x/' })).toThrow(/PIFAAS_URL_ALLOW: "http:\/\/x\/" is not/);
  });
});
