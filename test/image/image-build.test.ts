// The pieces of `pifaas build` that need no daemon: image names as Docker parses them, the platform
// table and the names users and daemons give platforms, the model choice and build context, the
// buildx command lines, and the CLI's own refusals.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseModels, makeBuildContext, packageRoot } from '../../src/image/build-context.js';
import { buildxBuildArgv, imagetoolsCreateArgv } from '../../src/image/buildx-builder.js';
import { dockerCliEnv, imageNames } from '../../src/image/function-image.js';
import { formatImageRef, parseImageRef, parseRegistryPrefix } from '../../src/image/image-ref.js';
import { functionPlatform, parsePlatforms, platformOfDaemon, platformOfImage, platformTag } from '../../src/image/platforms.js';
import { runCli } from '../lab/run-cli.js';

let cache: string;
const env = () => ({ ...process.env, XDG_CACHE_HOME: cache });
beforeAll(async () => {
  cache = await mkdtemp(path.join(tmpdir(), 'pifaas-t5-cache-'));
});
afterAll(async () => {
  await rm(cache, { recursive: true, force: true });
});

describe('image references', () => {
  it('splits names the way Docker does', () => {
    expect(parseImageRef('node:20-bookworm-slim')).toEqual({ registry: 'docker.io', repository: 'library/node', tag: '20-bookworm-slim' });
    expect(parseImageRef('192.168.1.5:5000/faas-resnet:1.0')).toEqual({ registry: '192.168.1.5:5000', repository: 'faas-resnet', tag: '1.0' });
    expect(parseImageRef('localhost/a/b')).toEqual({ registry: 'localhost', repository: 'a/b' });
    expect(parseImageRef('pifaas/faas-resnet')).toEqual({ registry: 'docker.io', repository: 'pifaas/faas-resnet' });
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(parseImageRef(`ghcr.io/x/y@${digest}`)).toEqual({ registry: 'ghcr.io', repository: 'x/y', digest });
    expect(formatImageRef(parseImageRef('docker.io/library/node:20'))).toBe('node:20');
    expect(formatImageRef(parseImageRef('127.0.0.1:5095/faas-resnet:latest'))).toBe('127.0.0.1:5095/faas-resnet:latest');
  });

  it('refuses bad names with what is wrong', () => {
    expect(() => parseImageRef('Faas-Resnet')).toThrow(/not a valid image name: each path part must be lower-case/);
    expect(() => parseImageRef('x:bad/tag:')).toThrow(/not a valid image name/);
    expect(() => parseImageRef('x@sha256:12')).toThrow(/digest after "@" must be sha256/);
    expect(() => parseRegistryPrefix('http://')).toThrow(/is not a registry address/);
    expect(parseRegistryPrefix('https://registry.lan:5000/team/')).toEqual({ registry: 'registry.lan:5000', path: 'team' });
  });

  it('names local, per-platform and pushed images consistently', () => {
    expect(imageNames({ functionName: 'faas-resnet' })).toEqual({ localRepository: 'pifaas/faas-resnet', tag: 'latest', registry: undefined });
    expect(imageNames({ functionName: 'faas-digits', tag: 'v2', push: '192.168.1.5:5000/lab', insecureRegistry: true })).toEqual({
      localRepository: 'pifaas/faas-digits',
      tag: 'v2',
      registry: { registry: '192.168.1.5:5000', repository: 'lab/faas-digits', insecure: true },
    });
    expect(() => imageNames({ functionName: 'faas-resnet', push: 'docker.io' })).toThrow(/needs your Docker Hub namespace/);
    expect(platformTag('latest', functionPlatform('linux/arm/v7'))).toBe('latest-armv7');
  });
});

describe('platforms', () => {
  it('maps user, daemon and registry names onto the three images and their Dockerfiles', () => {
    expect(parsePlatforms('linux/arm/v7, arm64,x86_64').map((p) => [p.name, p.dockerfile, p.engine])).toEqual([
      ['linux/amd64', 'docker/Dockerfile.amd64', 'node'],
      ['linux/arm64', 'docker/Dockerfile.amd64', 'node'],
      ['linux/arm/v7', 'docker/Dockerfile.armhf', 'web'],
    ]);
    expect(platformOfDaemon('pi1', 'aarch64').name).toBe('linux/arm64');
    expect(platformOfDaemon('pi2', 'armv7l').name).toBe('linux/arm/v7');
    expect(platformOfDaemon('aws', 'x86_64').name).toBe('linux/amd64');
    expect(platformOfImage({ Os: 'linux', Architecture: 'arm64', Variant: 'v8' })).toBe('linux/arm64');
    expect(platformOfImage({ Os: 'linux', Architecture: 'arm', Variant: 'v7' })).toBe('linux/arm/v7');
  });

  it('says what to do about platforms it has no image for', () => {
    expect(() => parsePlatforms('linux/arm/v6')).toThrow(/unsupported platform "linux\/arm\/v6"/);
    expect(() => parsePlatforms(' , ')).toThrow(/--platforms is empty/);
    expect(() => platformOfDaemon('pizero', 'armv6l')).toThrow(expect.objectContaining({ hint: expect.stringMatching(/Pi Zero, Pi 1\) have no Node.js 20 build/) }));
    expect(() => platformOfDaemon('mips', 'mips64')).toThrow(/mips: Docker runs on linux\/mips64/);
  });
});

describe('model choice and build context', () => {
  it('bakes faas-resnet\'s bundled fallback when its ResNet default is not downloaded, and says so', async () => {
    const c = await chooseModels('faas-resnet', undefined, env());
    expect(c.model).toBe('mobilenetv2-12-int8');
    expect(c.models.map((m) => [m.id, m.where])).toEqual([['mobilenetv2-12-int8', 'bundled']]);
    expect(c.notice).toMatch(/resnet50-v1-12-int8 is not downloaded.*pifaas models pull resnet50-v1-12-int8/);
  });

  it('bakes every faas-digits model, or the one asked for', async () => {
    const all = await chooseModels('faas-digits', undefined, env());
    expect([all.model, all.models.map((m) => m.id)]).toEqual(['', ['mnist-8', 'digits-8x8']]);
    const one = await chooseModels('faas-digits', 'digits-8x8', env());
    expect([one.model, one.models.map((m) => m.id)]).toEqual(['digits-8x8', ['digits-8x8']]);
  });

  it('refuses unknown functions, models of another function, and models not downloaded', async () => {
    await expect(chooseModels('faas-cats', undefined, env())).rejects.toThrow(/unknown function "faas-cats"/);
    await expect(chooseModels('faas-resnet', 'mnist-8', env())).rejects.toThrow(/faas-resnet does not serve the model "mnist-8"/);
    await expect(chooseModels('faas-resnet', 'resnet50-v2-7', env())).rejects.toMatchObject({
      message: expect.stringMatching(/model resnet50-v2-7 is not on this machine/),
      hint: 'download it first: pifaas models pull resnet50-v2-7',
    });
  });

  it('lays out a small context: lock file, compiled code, Dockerfiles and only the baked model', async () => {
    const ctx = await makeBuildContext(await chooseModels('faas-resnet', 'shufflenet-v2-12-int8', env()));
    try {
      expect((await readdir(ctx.dir)).sort()).toEqual(['dist', 'docker', 'models', 'package-lock.json', 'package.json']);
      expect((await readdir(path.join(ctx.dir, 'models'))).sort()).toEqual(expect.arrayContaining(['catalog.json', 'imagenet-synset.txt', 'shufflenet-v2-12-int8.onnx']));
      expect(await readdir(path.join(ctx.dir, 'models'))).not.toContain('mobilenetv2-12-int8.onnx');
      expect(await readdir(path.join(ctx.dir, 'dist', 'function'))).toContain('main.js');
      expect(ctx.bytes).toBeLessThan(20e6);
    } finally {
      await ctx.cleanup();
    }
    expect(packageRoot()).toBe(path.resolve(import.meta.dirname, '../..'));
  });
});

describe('pifaas installed from npm (no package-lock.json)', () => {
  it('pins the function packages to the versions installed with pifaas', async () => {
    const copy = path.join(cache, 'pifaas');
    await mkdir(copy);
    for (const f of ['package.json', 'docker', 'dist/function', 'models']) await cp(path.join(packageRoot(), f), path.join(copy, f), { recursive: true });
    await symlink(path.join(packageRoot(), 'node_modules'), path.join(copy, 'node_modules'));
    const ctx = await makeBuildContext(await chooseModels('faas-resnet', undefined, env(), copy), copy);
    try {
      expect(ctx.entries).toEqual(['package.json', 'docker', 'dist', 'models']);
      const deps = (JSON.parse(await readFile(path.join(ctx.dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies;
      const installed = async (name: string) => (JSON.parse(await readFile(path.join(packageRoot(), 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
      for (const name of ['sharp', 'zod', 'onnxruntime-node', 'onnxruntime-web']) expect(deps[name]).toBe(await installed(name));
      const out = path.join(cache, 'app');
      await promisify(execFile)(process.execPath, [path.join(ctx.dir, 'docker', 'function-deps.mjs'), 'manifest', '--engines', 'web', '--src', ctx.dir, '--out', out]);
      expect(await readdir(out)).toEqual(['package.json']);
    } finally {
      await ctx.cleanup();
    }
  });
});

describe('buildx path', () => {
  it('builds one platform per call with the same tags and build args as the Engine API path', () => {
    const argv = buildxBuildArgv({
      platform: functionPlatform('linux/arm/v7'),
      contextDir: '/tmp/ctx',
      buildArgs: { FUNCTION: 'faas-resnet', MODEL: 'mobilenetv2-12-int8' },
      tags: ['pifaas/faas-resnet:latest-armv7'],
      output: 'load',
    });
    expect(argv).toEqual([
      'buildx', 'build', '--platform', 'linux/arm/v7', '--file', '/tmp/ctx/docker/Dockerfile.armhf',
      '--build-arg', 'FUNCTION=faas-resnet', '--build-arg', 'MODEL=mobilenetv2-12-int8',
      '--tag', 'pifaas/faas-resnet:latest-armv7', '--load', '--provenance=false', '--progress', 'plain', '/tmp/ctx',
    ]);
    expect(buildxBuildArgv({ platform: functionPlatform('linux/amd64'), contextDir: '/c', buildArgs: {}, tags: ['r/x:1-amd64'], output: 'push', noCache: true })).toEqual(
      expect.arrayContaining(['--push', '--no-cache']),
    );
    expect(imagetoolsCreateArgv('r/x:1', ['r/x:1-amd64', 'r/x:1-armv7'])).toEqual(['buildx', 'imagetools', 'create', '--tag', 'r/x:1', 'r/x:1-amd64', 'r/x:1-armv7']);
  });

  it('runs buildx against the daemon of the Docker client it was given, else the environment\'s', () => {
    expect(dockerCliEnv(new Docker({ socketPath: '/run/x/docker.sock' }), { DOCKER_HOST: 'unix:///other.sock', PATH: '/bin' })).toEqual({ DOCKER_HOST: 'unix:///run/x/docker.sock', PATH: '/bin' });
    expect(dockerCliEnv(new Docker({ host: '10.0.0.5', port: 2375 }), {}).DOCKER_HOST).toBe('tcp://10.0.0.5:2375');
    const env = { DOCKER_HOST: 'ssh://pi@10.0.0.5' };
    expect(dockerCliEnv(undefined, env)).toBe(env);
  });
});

describe('pifaas build (CLI)', () => {
  it('explains bad flags before touching Docker', async () => {
    let r = await runCli(['build', 'faas-resnet', '--platforms', 'linux/s390x']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: unsupported platform "linux\/s390x" in --platforms\nhint: choose from linux\/amd64, linux\/arm64, linux\/arm\/v7/);
    r = await runCli(['build', 'faas-resnet', '--builder', 'kaniko']);
    expect(r.stderr).toMatch(/argument 'kaniko' is invalid. Allowed choices are auto, buildx, engine/);
    r = await runCli(['build', 'faas-resnet', '--json'], { env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr.trim().split('\n').pop() as string)).toMatchObject({ error: expect.stringMatching(/cannot reach the Docker daemon at unix:\/\/\/nonexistent\/docker.sock/) });
  });

  it('has examples in --help', async () => {
    const r = await runCli(['build', '--help']);
    expect(r.stdout).toMatch(/Examples:\n {2}\$ pifaas build faas-resnet/);
    const p = await runCli(['push', '--help']);
    expect(p.stdout).toMatch(/--to <inventory>[\s\S]*Examples:\n {2}\$ pifaas build faas-resnet && pifaas push faas-resnet --to inventory.yaml/);
  });
});
