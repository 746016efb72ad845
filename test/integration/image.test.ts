// Multi-platform function images, built for real: `pifaas build` through the Docker Engine API of a
// test daemon (BuildKit), FROM stand-in node:20-bookworm-slim images served by a local registry that
// plays Docker Hub; the amd64 image answers the tiger photo natively, the arm64 and arm/v7 images
// under qemu; the manifest list pushed to the registry names all three; `pifaas push` side-loads the
// image onto two lab nodes over SSH (and a second push sends nothing), or lets them pull it from a
// LAN registry.
import { execFile as execFileCb, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildxAvailable } from '../../src/image/buildx-builder.js';
import { buildFunctionImage, type BuildResult } from '../../src/image/function-image.js';
import { functionPlatform, platformOfImage } from '../../src/image/platforms.js';
import { imageManifestSchema, manifestListSchema, RegistryClient } from '../../src/image/registry-client.js';
import type { SideLoadResult } from '../../src/image/side-load.js';
import { labDown, labNodeExec, labUp, type Lab } from '../../src/lab/lab.js';
import { classifyTiger, startFunction as startFunctionContainer, waitHealthy, type Classification } from '../image/function-container.js';
import { startImageTestEnv, type ImageTestEnv } from '../image/image-test-env.js';
import { runCli } from '../lab/run-cli.js';

const execFile = promisify(execFileCb);
const ROOT = path.resolve(import.meta.dirname, '../..');
const LAB = 't5';
const LAB_SUBNET = '10.95.0.0/24';
const LAN_REGISTRY = '10.95.0.1:5096';

let env: ImageTestEnv;
let cliEnv: NodeJS.ProcessEnv;
let built: BuildResult;
let lab: Lab | undefined;
let work: string;
let lanRegistryPid: number | undefined;
const containers: string[] = [];
const hasBuildx = await buildxAvailable();

const last = <T>(xs: T[]) => xs[xs.length - 1] as T;
const image = (platform: string) => built.images.find((i) => i.platform === platform) as BuildResult['images'][number];

async function cli(args: string[]) {
  const r = await runCli(args, { env: cliEnv });
  if (r.code !== 0) throw new Error(`pifaas ${args.join(' ')} exited ${r.code}:\n${r.stderr.slice(-3000)}`);
  return r;
}

const startFunction = (docker: Docker, ref: string, binds: string[] = [], hostConfig: Docker.HostConfig = {}) => startFunctionContainer(docker, ref, containers, binds, hostConfig);

async function classify(ip: string): Promise<Classification> {
  const { status, answer } = await classifyTiger(ip);
  expect(status).toBe(200);
  return answer;
}

/** Runs `node -e script` in an image (as its own user) and returns stdout. */
async function nodeIn(ref: string, script: string): Promise<string> {
  const { stdout } = await execFile('/usr/bin/docker', ['run', '--rm', '--entrypoint', 'node', ref, '-e', script], { env: { ...process.env, DOCKER_HOST: env.dockerHost } });
  return stdout;
}

beforeAll(async () => {
  env = await startImageTestEnv();
  cliEnv = { DOCKER_HOST: env.dockerHost };
  work = await mkdtemp(path.join(tmpdir(), 'pifaas-t5-image-'));
  const r = await cli(['build', 'faas-resnet', '--push', env.registry, '--json']);
  built = JSON.parse(r.stdout) as BuildResult;
});

afterAll(async () => {
  for (const id of containers) await env?.docker.getContainer(id).remove({ force: true }).catch(() => undefined);
  if (lanRegistryPid) process.kill(lanRegistryPid, 'SIGTERM');
  if (lab) await labDown(LAB);
  await env?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('pifaas build', () => {
  it('builds linux/amd64, linux/arm64 and linux/arm/v7 with the right Dockerfile and engine, and reports size and build time', async () => {
    expect(built).toMatchObject({ function: 'faas-resnet', model: 'mobilenetv2-12-int8', builder: 'engine', localTag: 'pifaas/faas-resnet:latest' });
    expect(built.images.map((i) => [i.platform, i.image, i.dockerfile, i.engine])).toEqual([
      ['linux/amd64', 'pifaas/faas-resnet:latest-amd64', 'docker/Dockerfile.amd64', 'node'],
      ['linux/arm64', 'pifaas/faas-resnet:latest-arm64', 'docker/Dockerfile.amd64', 'node'],
      ['linux/arm/v7', 'pifaas/faas-resnet:latest-armv7', 'docker/Dockerfile.armhf', 'web'],
    ]);
    for (const i of built.images) {
      expect(i.size).toBeGreaterThan(50e6);
      expect(i.seconds).toBeGreaterThan(0);
      const info = await env.docker.getImage(i.image).inspect();
      expect(info.Id).toBe(i.id);
      expect(platformOfImage(info as { Os: string; Architecture: string; Variant?: string })).toBe(i.platform);
    }
    // This machine's platform also gets the plain tag.
    expect((await env.docker.getImage('pifaas/faas-resnet:latest').inspect()).Id).toBe(image('linux/amd64').id);

    // The human form, on a cached rebuild of one platform.
    const r = await cli(['build', 'faas-resnet', '--platforms', 'linux/amd64']);
    expect(r.stdout).toMatch(/^PLATFORM {3,}IMAGE {3,}SIZE {3,}BUILD TIME {3,}ENGINE\nlinux\/amd64 {3,}pifaas\/faas-resnet:latest-amd64 {3,}\d+\.\d MB {3,}\d+\.\d s {3,}onnxruntime-node\n/);
    expect(r.stdout).toMatch(/note: resnet50-v1-12-int8 is not downloaded, so the image bakes mobilenetv2-12-int8/);
  });

  it.skipIf(hasBuildx)('asks for the buildx plugin when --builder buildx is given without it', async () => {
    const r = await runCli(['build', 'faas-resnet', '--builder', 'buildx'], { env: cliEnv });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: docker buildx is not installed\nhint: install the buildx plugin \(docker-buildx-plugin\), or build through the Docker Engine API with --builder engine/m);
  });

  it('pushes one manifest list naming all three platform images', async () => {
    const client = new RegistryClient(env.registry);
    const list = await client.getManifest('faas-resnet', 'latest');
    expect(list?.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    expect(built.manifestList).toMatchObject({ reference: `${env.registry}/faas-resnet:latest`, digest: list?.digest });
    const entries = manifestListSchema.parse(JSON.parse(list?.body.toString() ?? '{}')).manifests;
    expect(entries.map((m) => m.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ]);
    // Each entry is the pushed image of that platform: its config digest is the local image ID.
    for (const [i, entry] of entries.entries()) {
      const m = await client.getManifest('faas-resnet', entry.digest);
      expect(imageManifestSchema.parse(JSON.parse(m?.body.toString() ?? '{}')).config.digest).toBe(built.images[i]?.id);
    }
    expect((await client.getManifest('faas-resnet', 'latest-armv7'))?.digest).toBe(last(entries).digest);
  });

  it('makes a non-root amd64 image with labels, watchdog defaults, a health check and only the function packages', async () => {
    const info = await env.docker.getImage(image('linux/amd64').image).inspect();
    expect(info.Config.User).toBe('1000:1000');
    expect(info.Config.Labels).toMatchObject({
      'io.pifaas.function': 'faas-resnet',
      'io.pifaas.model': 'mobilenetv2-12-int8',
      'io.pifaas.engine': 'node',
      'org.opencontainers.image.version': '0.1.0',
      'org.opencontainers.image.base.name': 'node:20-bookworm-slim',
    });
    expect(info.Config.Env).toEqual(expect.arrayContaining(['PIFAAS_FUNCTION=faas-resnet', 'PIFAAS_MODEL=mobilenetv2-12-int8', 'PIFAAS_ENGINE=node', 'port=8080', 'exec_timeout=60s']));
    expect(JSON.stringify(info.Config.Healthcheck?.Test)).toMatch(/_\/health/);
    expect(info.Config.Cmd).toEqual(['node', 'dist/function/main.js']);
    const listing = JSON.parse(
      await nodeIn(
        image('linux/amd64').image,
        `const fs=require('fs');console.log(JSON.stringify({mods:fs.readdirSync('/app/node_modules'),ort:fs.readdirSync('/app/node_modules/onnxruntime-node/bin/napi-v6').flatMap(o=>fs.readdirSync('/app/node_modules/onnxruntime-node/bin/napi-v6/'+o).map(c=>o+'/'+c)),models:fs.readdirSync('/app/models'),uid:process.getuid()}))`,
      ),
    ) as { mods: string[]; ort: string[]; models: string[]; uid: number };
    expect(listing.uid).toBe(1000);
    expect(listing.ort).toEqual(['linux/x64']);
    expect(listing.mods).toEqual(expect.arrayContaining(['onnxruntime-node', 'sharp', 'zod', '@img']));
    for (const cliDep of ['dockerode', 'ssh2', 'etcher-sdk', 'commander', 'listr2', 'onnxruntime-web']) expect(listing.mods).not.toContain(cliDep);
    expect(listing.models.filter((f) => f.endsWith('.onnx'))).toEqual(['mobilenetv2-12-int8.onnx']);
  });

  it('the amd64 image answers tiger.jpg with "tiger" and Docker reports it healthy', async () => {
    const ref = image('linux/amd64').image;
    const ip = await startFunction(env.docker, ref);
    await waitHealthy(ip, 30_000);
    const answer = await classify(ip);
    expect(answer.engine).toBe('onnxruntime-node');
    expect(answer.predictions[0]?.label).toMatch(/^tiger\b/);
    const c = env.docker.getContainer(last(containers));
    let status = '';
    for (let i = 0; i < 80 && status !== 'healthy'; i++) {
      status = ((await c.inspect()).State as { Health?: { Status: string } }).Health?.Status ?? '';
      if (status !== 'healthy') await new Promise((r) => setTimeout(r, 500));
    }
    expect(status).toBe('healthy');
  });

  it.skipIf(os.availableParallelism() < 2)('the amd64 image limited to one CPU (docker run --cpus 1) runs one inference at a time, on one thread', async () => {
    const ip = await startFunction(env.docker, image('linux/amd64').image, [], { NanoCpus: 1e9 });
    await waitHealthy(ip, 30_000);
    const health = (await (await fetch(`http://${ip}:8080/_/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ engine: { name: 'onnxruntime-node', parallelRuns: 1 }, models: [{ threads: { alone: 1, sideBySide: { runs: 1, threads: 1 } } }] });
    expect((await classify(ip)).predictions[0]?.label).toMatch(/^tiger\b/);
  });

  it('the arm64 and arm/v7 images answer the same under emulation (onnxruntime-node and onnxruntime-web)', async () => {
    // onnxruntime-node reads /proc/cpuinfo at load; under qemu it would see the x86 host's: give it an ARM one.
    const arm64 = await startFunction(env.docker, image('linux/arm64').image, [`${env.armCpuinfo}:/proc/cpuinfo:ro`]);
    const armv7 = await startFunction(env.docker, image('linux/arm/v7').image);
    await Promise.all([waitHealthy(arm64, 240_000), waitHealthy(armv7, 300_000)]);
    const [a, b] = await Promise.all([classify(arm64), classify(armv7)]);
    expect(a.engine).toBe('onnxruntime-node');
    expect(b.engine).toBe('onnxruntime-web');
    expect(a.predictions[0]?.label).toMatch(/^tiger\b/);
    expect(b.predictions[0]?.label).toMatch(/^tiger\b/);
    expect(b.predictions[0]?.probability).toBeCloseTo(a.predictions[0]?.probability ?? 0, 2);
  });

  it('refuses to build with a model whose sha256 differs from the catalog', async () => {
    const copy = path.join(work, 'package');
    await mkdir(copy);
    for (const f of ['package.json', 'package-lock.json', 'docker', 'dist', 'models']) await cp(path.join(ROOT, f), path.join(copy, f), { recursive: true });
    const model = path.join(copy, 'models', 'mobilenetv2-12-int8.onnx');
    const bytes = await readFile(model);
    bytes[4096] = (bytes[4096] as number) ^ 1;
    await writeFile(model, bytes);
    await expect(
      buildFunctionImage({ functionName: 'faas-resnet', platforms: [functionPlatform('linux/amd64')], docker: env.docker, packageRoot: copy, taskList: { renderer: 'silent' } }),
    ).rejects.toThrow(/building linux\/amd64 \(docker\/Dockerfile.amd64\) failed[\s\S]*mobilenetv2-12-int8\.onnx does not match the catalog/);
  });
});

describe('pifaas build without package-lock.json (pifaas installed from npm)', () => {
  it('installs the versions installed with pifaas and the image answers', async () => {
    const copy = path.join(work, 'npm-installed');
    await mkdir(copy);
    for (const f of ['package.json', 'docker', 'dist', 'models']) await cp(path.join(ROOT, f), path.join(copy, f), { recursive: true });
    await symlink(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
    const r = await buildFunctionImage({
      functionName: 'faas-resnet',
      platforms: [functionPlatform('linux/amd64')],
      repository: 'pifaas-t5/unlocked',
      docker: env.docker,
      packageRoot: copy,
      taskList: { renderer: 'silent' },
    });
    const ref = r.images[0]?.image as string;
    const sharp = JSON.parse(await readFile(path.join(ROOT, 'node_modules/sharp/package.json'), 'utf8')) as { version: string };
    expect((await nodeIn(ref, "console.log(require('/app/node_modules/sharp/package.json').version)")).trim()).toBe(sharp.version);
    const ip = await startFunction(env.docker, ref);
    await waitHealthy(ip, 30_000);
    expect((await classify(ip)).predictions[0]?.label).toMatch(/^tiger\b/);
  });
});

describe('pifaas push (side-loading)', () => {
  beforeAll(async () => {
    lab = await labUp({ name: LAB, nodes: 2, subnet: LAB_SUBNET, dir: path.join(work, 'lab'), user: 'root' });
  });

  const nodeImageId = async (node: string, ref = 'pifaas/faas-resnet:latest') =>
    (await labNodeExec(LAB, node, `docker image inspect -f '{{.Id}}' ${ref} 2>/dev/null || true`)).stdout.trim();

  it('puts the image of each node\'s platform on both lab nodes over SSH; a second push sends nothing', async () => {
    const inventory = (lab as Lab).inventoryFile;
    const first = JSON.parse((await cli(['push', 'faas-resnet', '--to', inventory, '--json'])).stdout) as SideLoadResult;
    expect(first.ok).toBe(true);
    expect(first.nodes.map((n) => [n.node, n.platform, n.status])).toEqual([
      ['t5-1', 'linux/amd64', 'sent'],
      ['t5-2', 'linux/amd64', 'sent'],
    ]);
    for (const n of first.nodes) expect(n.bytes).toBeGreaterThan(image('linux/amd64').size * 0.9);
    for (const node of ['t5-1', 't5-2']) expect(await nodeImageId(node)).toBe(image('linux/amd64').id);

    const second = await cli(['push', 'faas-resnet', '--to', inventory]);
    expect(second.stdout).toMatch(/t5-1 {3,}linux\/amd64 {3,}unchanged {3,}- /);
    expect(second.stdout).toMatch(/t5-2 {3,}linux\/amd64 {3,}unchanged {3,}- /);
    expect(second.stdout).toMatch(/pifaas\/faas-resnet:latest is on 2 node\(s\)/);
  });

  it('with --registry, nodes pull the multi-platform name from a LAN registry instead', async () => {
    await mkdir(path.join(work, 'lan-registry'), { recursive: true });
    const config = path.join(work, 'lan-registry.yml');
    await writeFile(config, `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(work, 'lan-registry')}\nhttp:\n  addr: ${LAN_REGISTRY}\n`);
    const reg = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: 'ignore' });
    lanRegistryPid = reg.pid;
    await expect.poll(() => fetch(`http://${LAN_REGISTRY}/v2/`).then((r) => r.ok, () => false), { timeout: 20_000 }).toBe(true);
    for (const node of ['t5-1', 't5-2']) {
      await labNodeExec(
        LAB,
        node,
        `mkdir -p /etc/docker && echo '{"insecure-registries":["${LAN_REGISTRY}"]}' > /etc/docker/daemon.json && service docker restart >/dev/null 2>&1; for i in $(seq 1 100); do docker version >/dev/null 2>&1 && break; sleep 0.2; done`,
      );
    }
    const lanBuild = JSON.parse((await cli(['build', 'faas-resnet', '--platforms', 'linux/amd64', '--push', LAN_REGISTRY, '--insecure-registry', '--json'])).stdout) as BuildResult;
    const id = lanBuild.images[0]?.id;
    expect(lanBuild.manifestList?.platforms).toEqual(['linux/amd64']);
    // t5-1 has this very image (sent over SSH); t5-2 has none.
    await cli(['push', 'faas-resnet', '--to', (lab as Lab).inventoryFile, '--host', 't5-1']);
    await labNodeExec(LAB, 't5-2', 'docker rmi -f pifaas/faas-resnet:latest pifaas/faas-resnet:latest-amd64 >/dev/null');
    expect(await nodeImageId('t5-2')).toBe('');
    const r = JSON.parse((await cli(['push', 'faas-resnet', '--to', (lab as Lab).inventoryFile, '--registry', LAN_REGISTRY, '--insecure-registry', '--json'])).stdout) as SideLoadResult;
    expect(r).toMatchObject({ ok: true, source: 'registry' });
    expect(r.nodes.map((n) => [n.node, n.status, n.bytes])).toEqual([
      ['t5-1', 'unchanged', 0],
      ['t5-2', 'pulled', 0],
    ]);
    for (const node of ['t5-1', 't5-2']) expect(await nodeImageId(node)).toBe(id);
  });

  it('names the node and the missing image when a platform was not built', async () => {
    await env.docker.getImage('pifaas/faas-digits:latest-amd64').remove({ force: true }).catch(() => undefined);
    const r = await runCli(['push', 'faas-digits', '--to', (lab as Lab).inventoryFile], { env: cliEnv });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/error: t5-1 runs linux\/amd64, but pifaas\/faas-digits:latest-amd64 is not built here\nhint: build it first: pifaas build faas-digits --platforms linux\/amd64/);
  });
});
