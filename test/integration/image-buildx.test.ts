// `pifaas build` through docker buildx, end to end. The buildx plugin is not packaged for Debian 12
// and cannot be downloaded here, so a Docker CLI plugin that follows buildx's published command line
// (test/image/buildx-double/) stands in for it: the real docker CLI finds it in DOCKER_CONFIG's
// cli-plugins/ and runs it, and it builds with the daemon's own BuildKit, pushes with docker push and
// writes the manifest list with docker manifest. The suite checks what a user sees: the build
// succeeds and says buildx, the tags are the Engine API path's, the image answers the tiger photo,
// the registry holds a manifest list naming the platforms built; and without the plugin,
// --builder buildx says what to install. linux/amd64 and linux/arm64 (no emulated build step) keep it
// short; running ARM images under emulation is test/integration/image.test.ts's part.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildResult } from '../../src/image/function-image.js';
import { platformOfImage } from '../../src/image/platforms.js';
import { imageManifestSchema, manifestListSchema, MEDIA, RegistryClient, type ManifestList } from '../../src/image/registry-client.js';
import { installBuildxDouble, type BuildxDouble } from '../image/buildx-double/buildx-double.js';
import { classifyTiger, startFunction, waitHealthy } from '../image/function-container.js';
import { BX, startImageTestEnv, type ImageTestEnv } from '../image/image-test-env.js';
import { runCli } from '../lab/run-cli.js';

let env: ImageTestEnv;
let work: string;
let double: BuildxDouble;
let withPlugin: NodeJS.ProcessEnv;
let buildx: BuildResult;
let engine: BuildResult;
let buildxCalls: string[][];
let callsAfterEngine: string[][];
const containers: string[] = [];
// A fresh registry path each run: the registry's storage outlives the suite.
const RUN = `bx${process.pid}`;
const PUSH_BUILDX = `${BX.registry}/${RUN}-buildx`;
const PUSH_ENGINE = `${BX.registry}/${RUN}-engine`;
// amd64 runs here; arm64 builds without emulating any step (docker/Dockerfile.amd64 installs for the
// target on the build platform), so it costs little and the manifest list names two platforms.
const PLATFORMS = 'linux/amd64,linux/arm64';

async function cli(args: string[], cliEnv: NodeJS.ProcessEnv) {
  const r = await runCli(args, { env: cliEnv });
  if (r.code !== 0) throw new Error(`pifaas ${args.join(' ')} exited ${r.code}:\n${r.stderr.slice(-3000)}`);
  return r;
}

const platformName = (entry: ManifestList['manifests'][number]) =>
  entry.platform ? platformOfImage({ Os: entry.platform.os, Architecture: entry.platform.architecture, Variant: entry.platform.variant }) : 'none';

const registryTags = async (repository: string) =>
  ((await (await fetch(`http://${BX.registry}/v2/${repository}/tags/list`)).json()) as { tags: string[] }).tags.sort();

beforeAll(async () => {
  env = await startImageTestEnv(undefined, BX);
  work = await mkdtemp(path.join(tmpdir(), 'pifaas-bx-'));
  double = await installBuildxDouble(work);
  withPlugin = { DOCKER_HOST: env.dockerHost, DOCKER_CONFIG: double.dockerConfig };
  // The daemon's storage outlives the suite too: the tags checked below must come from this run.
  for (const tag of ['latest', 'latest-amd64']) await env.docker.getImage(`pifaas/faas-resnet:${tag}`).remove({ noprune: true }).catch(() => undefined);

  buildx = JSON.parse((await cli(['build', 'faas-resnet', '--builder', 'buildx', '--platforms', PLATFORMS, '--push', PUSH_BUILDX, '--json'], withPlugin)).stdout) as BuildResult;
  buildxCalls = await double.calls();
  engine = JSON.parse((await cli(['build', 'faas-resnet', '--builder', 'engine', '--platforms', PLATFORMS, '--push', PUSH_ENGINE, '--json'], withPlugin)).stdout) as BuildResult;
  callsAfterEngine = await double.calls();
});

afterAll(async () => {
  for (const id of containers) await env?.docker.getContainer(id).remove({ force: true }).catch(() => undefined);
  await env?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('pifaas build --builder buildx', () => {
  it('builds with docker buildx and gives the same tags as the Docker Engine API path', async () => {
    expect(buildx).toMatchObject({ function: 'faas-resnet', model: 'mobilenetv2-12-int8', builder: 'buildx', localTag: 'pifaas/faas-resnet:latest' });
    expect(engine.builder).toBe('engine');
    const shape = (r: BuildResult, push: string) => ({
      images: r.images.map((i) => [i.platform, i.image, i.dockerfile, i.engine, i.pushed?.replace(push, 'REGISTRY')]),
      localTag: r.localTag,
      manifestList: r.manifestList && { ...r.manifestList, reference: r.manifestList.reference.replace(push, 'REGISTRY'), digest: 'D' },
    });
    expect(shape(buildx, PUSH_BUILDX)).toEqual({
      images: [
        ['linux/amd64', 'pifaas/faas-resnet:latest-amd64', 'docker/Dockerfile.amd64', 'node', 'REGISTRY/faas-resnet:latest-amd64'],
        ['linux/arm64', 'pifaas/faas-resnet:latest-arm64', 'docker/Dockerfile.amd64', 'node', 'REGISTRY/faas-resnet:latest-arm64'],
      ],
      localTag: 'pifaas/faas-resnet:latest',
      manifestList: { reference: 'REGISTRY/faas-resnet:latest', digest: 'D', platforms: ['linux/amd64', 'linux/arm64'] },
    });
    expect(shape(engine, PUSH_ENGINE)).toEqual(shape(buildx, PUSH_BUILDX));
    expect(await registryTags(`${RUN}-buildx/faas-resnet`)).toEqual(['latest', 'latest-amd64', 'latest-arm64']);
    expect(await registryTags(`${RUN}-engine/faas-resnet`)).toEqual(await registryTags(`${RUN}-buildx/faas-resnet`));

    // The buildx images are in the daemon under their local tags (this machine's platform also under
    // the plain one), each for its platform, with size and build time.
    for (const [i, image] of buildx.images.entries()) {
      const info = await env.docker.getImage(image.id).inspect();
      expect(info.RepoTags).toEqual(expect.arrayContaining([image.image, ...(image.platform === 'linux/amd64' ? ['pifaas/faas-resnet:latest'] : [])]));
      expect(platformOfImage(info as { Os: string; Architecture: string; Variant?: string })).toBe(image.platform);
      expect(image.size).toBe(info.Size);
      expect(image.size).toBeGreaterThan(50e6);
      expect(image.seconds).toBeGreaterThan(0);
      // Same inputs, same BuildKit: the two paths make the very same image.
      expect(engine.images[i]?.id).toBe(image.id);
    }
  });

  it('calls docker buildx the way its CLI reference documents (the plugin saw these command lines)', () => {
    const context = buildxCalls[1]?.at(-1) as string;
    const build = (platform: string, tags: string[], output: string) => [
      'build', '--platform', platform, '--file', `${context}/docker/Dockerfile.amd64`,
      '--build-arg', 'FUNCTION=faas-resnet', '--build-arg', 'MODEL=mobilenetv2-12-int8', '--build-arg', 'MODELS=', '--build-arg', 'VERSION=0.1.0',
      ...tags.flatMap((t) => ['--tag', t]), output, '--provenance=false', '--progress', 'plain', context,
    ];
    expect(buildxCalls).toEqual([
      ['version'],
      build('linux/amd64', ['pifaas/faas-resnet:latest-amd64', 'pifaas/faas-resnet:latest'], '--load'),
      build('linux/arm64', ['pifaas/faas-resnet:latest-arm64'], '--load'),
      build('linux/amd64', [`${PUSH_BUILDX}/faas-resnet:latest-amd64`], '--push'),
      build('linux/arm64', [`${PUSH_BUILDX}/faas-resnet:latest-arm64`], '--push'),
      ['imagetools', 'create', '--tag', `${PUSH_BUILDX}/faas-resnet:latest`, `${PUSH_BUILDX}/faas-resnet:latest-amd64`, `${PUSH_BUILDX}/faas-resnet:latest-arm64`],
    ]);
    // --builder engine never runs the plugin.
    expect(callsAfterEngine).toEqual(buildxCalls);
  });

  it('leaves one manifest list in the registry naming the platforms built, whose entries are the images built', async () => {
    const client = new RegistryClient(BX.registry);
    const repository = `${RUN}-buildx/faas-resnet`;
    const list = await client.getManifest(repository, 'latest');
    expect(list?.mediaType).toBe(MEDIA.dockerList);
    expect(buildx.manifestList?.digest).toBe(list?.digest);
    const entries = manifestListSchema.parse(JSON.parse(list?.body.toString() ?? '{}')).manifests;
    // BuildKit leaves arm64's "v8" out of the image config, so the entry may name it or not: same platform.
    expect(entries.map(platformName)).toEqual(['linux/amd64', 'linux/arm64']);
    for (const [i, entry] of entries.entries()) {
      expect(entry.digest).toBe((await client.getManifest(repository, ['latest-amd64', 'latest-arm64'][i] as string))?.digest);
      const image = await client.getManifest(repository, entry.digest);
      expect(imageManifestSchema.parse(JSON.parse(image?.body.toString() ?? '{}')).config.digest).toBe(buildx.images[i]?.id);
    }
    // The Engine API path's list names the same platforms.
    const engineList = await client.getManifest(`${RUN}-engine/faas-resnet`, 'latest');
    expect(manifestListSchema.parse(JSON.parse(engineList?.body.toString() ?? '{}')).manifests.map(platformName)).toEqual(entries.map(platformName));
  });

  it('the buildx image answers tiger.jpg with "tiger"', async () => {
    const ip = await startFunction(env.docker, buildx.images[0]?.id as string, containers);
    await waitHealthy(ip, 30_000);
    const { status, answer } = await classifyTiger(ip);
    expect(status).toBe(200);
    expect(answer.engine).toBe('onnxruntime-node');
    expect(answer.predictions[0]?.label).toMatch(/^tiger\b/);
  });

  it('picks buildx by itself when the plugin is installed, and says so', async () => {
    const before = (await double.calls()).length;
    const r = await cli(['build', 'faas-resnet', '--platforms', 'linux/amd64'], withPlugin);
    expect(r.stdout).toMatch(/^PLATFORM {3,}IMAGE {3,}SIZE {3,}BUILD TIME {3,}ENGINE\nlinux\/amd64 {3,}pifaas\/faas-resnet:latest-amd64 {3,}\d+\.\d MB {3,}\d+\.\d s {3,}onnxruntime-node\n/);
    expect(r.stdout).toMatch(/built with docker buildx in \d+\.\d s/);
    expect((await double.calls()).slice(before).map((c) => c.slice(0, 3))).toEqual([['version'], ['build', '--platform', 'linux/amd64']]);
  });

  it('a failing buildx build names the command and shows its last lines', async () => {
    const r = await runCli(['build', 'faas-resnet', '--builder', 'buildx', '--platforms', 'linux/amd64', '--base-image', `${BX.registry}/${RUN}-none/node:20`], { env: withPlugin });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: `docker buildx build --platform linux\/amd64 \.\.\.` failed \(exit 1\):\n( {2}.*\n)* {2}.*not found/);
    expect(r.stderr).toMatch(/hint: the lines above come from docker buildx/);
  });

  it('without the plugin, --builder buildx says what to install', async () => {
    const empty = path.join(work, 'no-plugins');
    await mkdir(empty, { recursive: true });
    const r = await runCli(['build', 'faas-resnet', '--builder', 'buildx', '--platforms', 'linux/amd64'], { env: { DOCKER_HOST: env.dockerHost, DOCKER_CONFIG: empty } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: docker buildx is not installed\nhint: install the buildx plugin \(docker-buildx-plugin\), or build through the Docker Engine API with --builder engine/m);
  });
});
