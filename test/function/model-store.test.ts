// Downloading models: `pifaas models pull` from a mirror (a local HTTP server standing in for the
// ONNX Model Zoo, serving real model files) with progress, sha256 and size checks, nothing half-written
// in the XDG cache on a wrong checksum, a truncated transfer or no network, and faas-resnet fetching
// its model at start-up.
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClassifier } from '../../src/function/classifier.js';
import { defaultModelsDir, findModel, loadCatalog, type Catalog } from '../../src/function/model-catalog.js';
import { modelCacheDir, ModelDownloadError, pullModel } from '../../src/function/model-store.js';
import { closedPort, image, localServer, runCli, type LocalServer } from './helpers.js';

const REMOTE_ID = 'test-remote-shufflenet';
const REMOTE_FILE = 'test-remote-shufflenet.onnx';

let work: string;
let modelsDir: string;
let catalog: Catalog;
let real: Buffer;
let mirror: LocalServer;
/** What the mirror serves for REMOTE_FILE: the real bytes, other bytes, or a transfer that breaks off. */
let mode: 'ok' | 'wrong-bytes' | 'truncated' | 'oversize' | 'silent' = 'ok';

function cacheOf(name: string): NodeJS.ProcessEnv {
  return { HOME: work, XDG_CACHE_HOME: path.join(work, name) };
}

async function cacheFiles(env: NodeJS.ProcessEnv): Promise<string[]> {
  try {
    return await readdir(modelCacheDir(env));
  } catch {
    return [];
  }
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'pifaas-models-'));
  modelsDir = path.join(work, 'models');
  await mkdir(modelsDir);
  // A catalog like the real one plus a "remote" model (ShuffleNet's real bytes under another name),
  // made faas-resnet's default so start-up has to download it.
  const src = defaultModelsDir();
  const json = JSON.parse(await readFile(path.join(src, 'catalog.json'), 'utf8'));
  const shuffle = json.models.find((m: { id: string }) => m.id === 'shufflenet-v2-12-int8');
  json.models.push({ ...shuffle, id: REMOTE_ID, file: REMOTE_FILE, bundled: false, source: { url: 'https://models.invalid/test-remote-shufflenet.onnx', note: 'test' } });
  json.functions['faas-resnet'].defaultModel = REMOTE_ID;
  json.functions['faas-resnet'].models.push(REMOTE_ID);
  await writeFile(path.join(modelsDir, 'catalog.json'), JSON.stringify(json, null, 2));
  for (const f of ['mobilenetv2-12-int8.onnx', 'imagenet-synset.txt', 'digits-labels.txt', 'mnist-8.onnx', 'digits-8x8.onnx', 'shufflenet-v2-12-int8.onnx']) {
    await copyFile(path.join(src, f), path.join(modelsDir, f));
  }
  catalog = await loadCatalog(modelsDir);
  real = await readFile(path.join(src, 'shufflenet-v2-12-int8.onnx'));
  mirror = await localServer((req, res) => {
    if (req.url !== `/onnx/${REMOTE_FILE}`) {
      res.writeHead(404);
      res.end();
      return;
    }
    if (mode === 'silent') return; // accepts the connection, never answers
    if (mode === 'ok') {
      res.writeHead(200, { 'content-length': real.length });
      // In pieces, so progress has something to show.
      const step = 256 * 1024;
      let off = 0;
      const next = () => {
        if (off >= real.length) return void res.end();
        res.write(real.subarray(off, off + step), next);
        off += step;
      };
      next();
    } else if (mode === 'wrong-bytes') {
      const other = Buffer.from(real);
      other[1000] = (other[1000] ?? 0) ^ 0xff;
      res.writeHead(200, { 'content-length': other.length });
      res.end(other);
    } else if (mode === 'oversize') {
      res.writeHead(200);
      res.end(Buffer.concat([real, Buffer.alloc(10)]));
    } else {
      res.writeHead(200, { 'content-length': real.length });
      res.write(real.subarray(0, 1_000_000), () => res.destroy());
    }
  });
});

afterAll(async () => {
  await mirror?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('pullModel', () => {
  it('downloads from the mirror into the XDG cache with progress, checks sha256, and is a no-op the second time', async () => {
    mode = 'ok';
    const env = cacheOf('cache-ok');
    const progress: number[] = [];
    const r = await pullModel(catalog, findModel(catalog, REMOTE_ID), { env, mirror: `${mirror.url}/onnx/`, onProgress: (done, total) => {
      expect(total).toBe(real.length);
      progress.push(done);
    } });
    expect(r).toMatchObject({ model: REMOTE_ID, downloaded: true, where: 'cache', bytes: real.length, url: `${mirror.url}/onnx/${REMOTE_FILE}` });
    expect(r.path).toBe(path.join(work, 'cache-ok', 'pifaas', 'models', REMOTE_FILE));
    expect((await readFile(r.path)).equals(real)).toBe(true);
    expect(progress.length).toBeGreaterThan(3);
    expect(progress.at(-1)).toBe(real.length);
    expect(await cacheFiles(env)).toEqual([REMOTE_FILE]);
    const again = await pullModel(catalog, findModel(catalog, REMOTE_ID), { env, mirror: `${mirror.url}/onnx` });
    expect(again.downloaded).toBe(false);
  });

  it('a wrong checksum, a truncated transfer, too many bytes or no network: clear error, nothing left in the cache', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}/onnx`;
    const cases: Array<['wrong-bytes' | 'truncated' | 'oversize' | 'ok', string, string, RegExp]> = [
      ['wrong-bytes', mirror.url + '/onnx', 'checksum', /has sha256 [0-9a-f]{64}, the catalog expects bf5eefde/],
      ['truncated', mirror.url + '/onnx', 'network', /broke off after \d+ of 2388912 bytes/],
      ['oversize', mirror.url + '/onnx', 'size', /more than the limit of 2388912 bytes/],
      ['ok', dead, 'network', /connection to 127\.0\.0\.1:\d+ refused/],
      ['ok', mirror.url + '/elsewhere', 'network', /answered HTTP 404/],
    ];
    for (const [m, base, kind, message] of cases) {
      mode = m;
      const env = cacheOf(`cache-${m}-${kind}`);
      const err = await pullModel(catalog, findModel(catalog, REMOTE_ID), { env, mirror: base }).catch((e: unknown) => e);
      expect(err, `${m} ${base}`).toBeInstanceOf(ModelDownloadError);
      expect((err as ModelDownloadError).kind, m).toBe(kind);
      expect((err as Error).message, m).toMatch(message);
      expect(await cacheFiles(env), m).toEqual([]);
    }
  });

  it('a server that never answers: gives up after the headers deadline, nothing left in the cache', async () => {
    mode = 'silent';
    const env = cacheOf('cache-silent');
    const t0 = Date.now();
    const err = await pullModel(catalog, findModel(catalog, REMOTE_ID), { env, mirror: `${mirror.url}/onnx`, headersTimeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelDownloadError);
    expect((err as Error).message).toMatch(/127\.0\.0\.1:\d+ did not answer within 0\.3 s/);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await cacheFiles(env)).toEqual([]);
  });

  it('bundled models need no download', async () => {
    const r = await pullModel(catalog, findModel(catalog, 'mnist-8'), { env: cacheOf('cache-bundled') });
    expect(r).toMatchObject({ downloaded: false, where: 'bundled', path: path.join(modelsDir, 'mnist-8.onnx') });
  });
});

describe('faas-resnet start-up', () => {
  it('downloads its missing default model into the cache and serves it', async () => {
    mode = 'ok';
    const env = { ...cacheOf('cache-startup'), PIFAAS_MODEL_MIRROR: `${mirror.url}/onnx` };
    const lines: string[] = [];
    const c = await startClassifier({ name: 'faas-resnet', modelsDir, engine: 'node', env, log: (l) => lines.push(l) });
    try {
      expect(lines).toEqual([`${REMOTE_ID} is neither bundled nor cached: downloading 2.4 MB into the cache`]);
      expect(c.info().models[0]).toMatchObject({ id: REMOTE_ID, where: 'cache' });
      const r = await c.classify(image('tench.png'));
      expect(r.model).toBe(REMOTE_ID);
      expect(r.predictions[0]?.index).toBe(389);
    } finally {
      await c.close();
    }
  });
});

describe('pifaas models (CLI)', () => {
  it('pull shows progress and where the file went; list and verify see it; a bad mirror is a clear error', async () => {
    mode = 'ok';
    const env = { ...cacheOf('cache-cli'), PIFAAS_MODELS_DIR: modelsDir };
    const pull = await runCli(['models', 'pull', REMOTE_ID, '--mirror', `${mirror.url}/onnx`], env);
    expect(pull.code).toBe(0);
    expect(pull.stderr).toMatch(new RegExp(`${REMOTE_ID}: 2\\.4 MB of 2\\.4 MB \\(100%\\)`));
    expect(pull.stdout).toMatch(new RegExp(`${REMOTE_ID}: downloaded 2\\.4 MB, sha256 ok -> .*cache-cli/pifaas/models/${REMOTE_FILE}`));

    const list = await runCli(['models', 'list', '--json'], env);
    expect(list.code).toBe(0);
    const models = (JSON.parse(list.stdout) as { models: Array<{ id: string; status: string }> }).models;
    expect(models.find((m) => m.id === REMOTE_ID)?.status).toBe('cached');
    expect(models.find((m) => m.id === 'resnet50-v2-7')?.status).toBe('remote');
    expect(models.find((m) => m.id === 'mobilenetv2-12-int8')?.status).toBe('bundled');
    const table = await runCli(['models', 'list'], env);
    expect(table.stdout).toMatch(/^ID +TASK +SIZE +STATUS +LICENSE +FUNCTIONS$/m);
    expect(table.stdout).toMatch(/^resnet50-v1-12-int8 +imagenet +25\.8 MB +remote +Apache-2\.0 +faas-resnet$/m);

    const verify = await runCli(['models', 'verify', REMOTE_ID], env);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(new RegExp(`ok +${REMOTE_ID}`));

    const bad = await runCli(['models', 'pull', 'resnet50-v2-7', '--mirror', `${mirror.url}/onnx`], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: downloading resnet50-v2-7 from http:\/\/127\.0\.0\.1:\d+\/onnx\/resnet50-v2-7\.onnx failed: 127\.0\.0\.1:\d+ answered HTTP 404/m);
    expect(bad.stderr).toMatch(/nothing was written to the cache/);
    expect(bad.stderr).toMatch(/^hint: /m);
    expect(await cacheFiles(env)).toEqual([REMOTE_FILE]);

    const unknown = await runCli(['models', 'pull', 'resnet-9000'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/error: unknown model "resnet-9000"; known models: .*\nhint: run `pifaas models list`/);
  });
});
