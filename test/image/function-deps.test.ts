// The image installs only the function's npm packages, pinned by the project's own lock file, and
// bakes only models whose sha256 matches the catalog: docker/function-deps.mjs and
// docker/bake-model.mjs run here with the real package-lock.json and models/.
import { execFile as execFileCb } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const execFile = promisify(execFileCb);
const root = path.resolve(import.meta.dirname, '../..');
const docker = path.join(root, 'docker');
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'pifaas-t5-deps-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Lock {
  packages: Record<string, { version?: string; integrity?: string; dependencies?: Record<string, string> }>;
}

async function manifestFor(engines: string): Promise<{ pkg: { dependencies: Record<string, string>; type: string }; lock: Lock }> {
  const out = path.join(work, engines);
  await execFile(process.execPath, [path.join(docker, 'function-deps.mjs'), 'manifest', '--engines', engines, '--src', root, '--out', out]);
  return { pkg: JSON.parse(await readFile(path.join(out, 'package.json'), 'utf8')), lock: JSON.parse(await readFile(path.join(out, 'package-lock.json'), 'utf8')) };
}

const names = (lock: Lock) => Object.keys(lock.packages).filter(Boolean).map((p) => p.replace(/^.*node_modules\//, ''));
const CLI_ONLY = ['dockerode', 'ssh2', 'etcher-sdk', 'commander', 'listr2', 'drivelist', 'balena-image-fs', '@kubernetes/client-node', 'yaml', 'cli-progress'];

describe('function-deps.mjs', () => {
  it('cuts the lock file down to the native engine, sharp and zod, at the project lock versions', async () => {
    const { pkg, lock } = await manifestFor('node');
    const rootLock = JSON.parse(await readFile(path.join(root, 'package-lock.json'), 'utf8')) as Lock;
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['@jsquash/jpeg', 'onnxruntime-node', 'sharp', 'zod']);
    expect(pkg.type).toBe('module');
    expect(lock.packages['']?.dependencies).toEqual(pkg.dependencies);
    const got = names(lock);
    expect(got).toEqual(expect.arrayContaining(['@jsquash/jpeg', 'onnxruntime-node', 'onnxruntime-common', 'sharp', '@img/sharp-linux-arm64', '@img/sharp-linux-x64', 'zod']));
    for (const cli of [...CLI_ONLY, 'onnxruntime-web']) expect(got).not.toContain(cli);
    for (const [p, entry] of Object.entries(lock.packages)) {
      if (p) expect(entry).toEqual(rootLock.packages[p]);
    }
  });

  it('gives the armhf image onnxruntime-web and not onnxruntime-node', async () => {
    const got = names((await manifestFor('web')).lock);
    expect(got).toEqual(expect.arrayContaining(['@jsquash/jpeg', 'onnxruntime-web', 'sharp', '@img/sharp-linux-arm', '@img/sharp-libvips-linux-arm', 'zod']));
    for (const cli of [...CLI_ONLY, 'onnxruntime-node']) expect(got).not.toContain(cli);
  });

  it('lists every package src/function imports, each a dependency of pifaas; the function imports nothing else of pifaas', async () => {
    const listed = JSON.parse(await readFile(path.join(docker, 'function-deps.json'), 'utf8')) as { common: string[]; engines: Record<string, string[]> };
    const all = new Set([...listed.common, ...Object.values(listed.engines).flat()]);
    const imported = new Set<string>();
    const dir = path.join(root, 'src', 'function');
    for (const f of (await readdir(dir)).filter((n) => n.endsWith('.ts'))) {
      const text = await readFile(path.join(dir, f), 'utf8');
      for (const m of text.matchAll(/(?:^|\n)\s*import\s+(?!type\b)[^'"]*?from\s+'([^'.][^']*)'|import\('([^'.][^']*)'\)/g)) {
        const spec = (m[1] ?? m[2]) as string;
        if (spec.startsWith('node:')) continue;
        imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string));
      }
    }
    expect(imported.size).toBeGreaterThan(0);
    for (const p of imported) expect(all, `src/function imports ${p}`).toContain(p);
    // The image holds dist/function alone, so the function must not import the rest of pifaas.
    for (const f of (await readdir(dir)).filter((n) => n.endsWith('.ts'))) {
      expect(await readFile(path.join(dir, f), 'utf8'), f).not.toMatch(/from '\.\.\/|import\('\.\.\//);
    }
    const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const p of all) expect(Object.keys(pkg.dependencies)).toContain(p);
  });

  it('refuses a target without an engine list or with an unknown architecture', async () => {
    const run = (args: string[]) => execFile(process.execPath, [path.join(docker, 'function-deps.mjs'), ...args]).then(() => '', (e: { stderr: string }) => e.stderr);
    expect(await run(['manifest', '--engines', 'gpu', '--src', root, '--out', path.join(work, 'x')])).toMatch(/--engines must list some of: node, web/);
    expect(await run(['install', '--engines', 'node', '--arch', 'riscv64', '--src', root, '--out', path.join(work, 'x')])).toMatch(/unsupported target architecture "riscv64"/);
  });
});

describe('bake-model.mjs', () => {
  const bake = (args: string[]) =>
    execFile(process.execPath, [path.join(docker, 'bake-model.mjs'), ...args]).then(
      (r) => ({ code: 0, out: r.stdout }),
      (e: { code: number; stderr: string }) => ({ code: e.code, out: e.stderr }),
    );

  it('bakes the chosen model with its labels and the catalog, after checking its sha256', async () => {
    const to = path.join(work, 'baked');
    const r = await bake(['--function', 'faas-resnet', '--models', 'mobilenetv2-12-int8', '--from', path.join(root, 'models'), '--to', to]);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/mobilenetv2-12-int8 \(mobilenetv2-12-int8\.onnx, 3655640 bytes, sha256 ok\)/);
    expect((await readdir(to)).sort()).toEqual(expect.arrayContaining(['catalog.json', 'imagenet-synset.txt', 'mobilenetv2-12-int8.onnx']));
    expect(await readdir(to)).not.toContain('shufflenet-v2-12-int8.onnx');
  });

  it('bakes every digits model when none is named, and needs a name for an ImageNet function', async () => {
    const to = path.join(work, 'digits');
    expect(await bake(['--function', 'faas-digits', '--models', ' ', '--from', path.join(root, 'models'), '--to', to])).toMatchObject({ code: 0 });
    expect(await readdir(to)).toEqual(expect.arrayContaining(['mnist-8.onnx', 'digits-8x8.onnx']));
    const r = await bake(['--function', 'faas-resnet', '--models', '', '--from', path.join(root, 'models'), '--to', path.join(work, 'none')]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/name the model to bake for faas-resnet/);
  });

  it('fails the build when a model file does not match the catalog, or is missing, or is not served', async () => {
    const models = path.join(work, 'bad-models');
    await execFile('cp', ['-r', path.join(root, 'models'), models]);
    const file = path.join(models, 'mobilenetv2-12-int8.onnx');
    const bytes = await readFile(file);
    bytes[1000] = (bytes[1000] as number) ^ 0xff;
    await writeFile(file, bytes);
    let r = await bake(['--function', 'faas-resnet', '--models', 'mobilenetv2-12-int8', '--from', models, '--to', path.join(work, 'o1')]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/mobilenetv2-12-int8\.onnx does not match the catalog: 3655640 bytes, sha256 [0-9a-f]{64}; expected 3655640 bytes, sha256 83530ad8/);
    r = await bake(['--function', 'faas-resnet', '--models', 'resnet50-v2-7', '--from', models, '--to', path.join(work, 'o2')]);
    expect(r.out).toMatch(/resnet50-v2-7\.onnx \(model resnet50-v2-7\) is not in the build context; download it first: pifaas models pull resnet50-v2-7/);
    r = await bake(['--function', 'faas-digits', '--models', 'mobilenetv2-12-int8', '--from', models, '--to', path.join(work, 'o3')]);
    expect(r.out).toMatch(/faas-digits does not serve "mobilenetv2-12-int8"; it serves: mnist-8, digits-8x8/);
  });
});
