// Why: the README's image figures, measured in one run on the test daemon (stand-in base images,
// see scripts/stand-in-base-images.ts): uncompressed image size per platform (and what pifaas adds
// on top of the base image), container start to /_/health 200 on amd64, and the rebuild time of one
// platform with a warm cache after a source-only change. Printed next to their targets as ratios.
//
//   npx tsx bench/image-figures.ts [--cold] [--runs 5] [--json]
//     --cold   empty the daemon's build (layer) cache first; BuildKit keeps the npm download cache mount
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { buildFunctionImage, type BuildResult } from '../src/image/function-image.js';
import { FUNCTION_PLATFORMS, functionPlatform } from '../src/image/platforms.js';
import { startImageTestEnv } from '../test/image/image-test-env.js';

const args = process.argv.slice(2);
const cold = args.includes('--cold');
const json = args.includes('--json');
const runs = Number(args[args.indexOf('--runs') + 1] ?? 5) || 5;
const ROOT = path.resolve(import.meta.dirname, '..');
const REPO = 'pifaas-bench/faas-resnet';
const TARGETS = { amd64Bytes: 300e6, startMs: 2000, rebuildSeconds: 30 };

const say = (line: string) => process.stderr.write(`${line}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function pullSize(docker: Docker, platform: string): Promise<number> {
  const stream = await docker.pull('node:20-bookworm-slim', { platform } as never);
  await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve(undefined))));
  const size = (await docker.getImage('node:20-bookworm-slim').inspect()).Size;
  // Builds resolve the base by platform through the registry; a local tag of one platform must not linger.
  await docker.getImage('node:20-bookworm-slim').remove({ noprune: true });
  return size;
}

async function startToHealthy(docker: Docker, image: string): Promise<number> {
  const c = await docker.createContainer({ Image: image });
  try {
    const t0 = performance.now();
    await c.start();
    const ip = ((await c.inspect()).NetworkSettings as unknown as { IPAddress: string }).IPAddress;
    for (;;) {
      const ok = await fetch(`http://${ip}:8080/_/health`, { signal: AbortSignal.timeout(1000) }).then((r) => r.status === 200, () => false);
      if (ok) return performance.now() - t0;
      if (performance.now() - t0 > 60_000) throw new Error(`${image} did not answer /_/health within 60 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await c.remove({ force: true });
  }
}

async function main(): Promise<void> {
  const env = await startImageTestEnv(say);
  const work = await mkdtemp(path.join(tmpdir(), 'pifaas-bench-image-'));
  try {
    // A copy of the package, so the "source change" below never touches the working tree.
    const root = path.join(work, 'pifaas');
    for (const f of ['package.json', 'package-lock.json', 'docker', 'dist/function', 'models']) await cp(path.join(ROOT, f), path.join(root, f), { recursive: true });
    if (cold) {
      say('emptying the build cache (--cold)');
      await new Promise((resolve, reject) =>
        env.docker.modem.dial({ path: '/build/prune?', method: 'POST', options: { all: true }, statusCodes: { 200: true } }, (err, data) => (err ? reject(err) : resolve(data))),
      );
    }
    const build = (platforms = FUNCTION_PLATFORMS.map((p) => p.name)): Promise<BuildResult> =>
      buildFunctionImage({
        functionName: 'faas-resnet',
        platforms: platforms.map(functionPlatform),
        repository: REPO,
        docker: env.docker,
        packageRoot: root,
        builder: 'engine',
        taskList: { renderer: 'silent' },
      });

    say('building linux/amd64, linux/arm64, linux/arm/v7');
    const first = await build();
    const bases: Record<string, number> = {};
    for (const p of FUNCTION_PLATFORMS) bases[p.name] = await pullSize(env.docker, p.name);

    say(`container start to /_/health 200 on amd64 (${runs} runs)`);
    const amd64 = first.images.find((i) => i.platform === 'linux/amd64');
    if (!amd64) throw new Error('no amd64 image');
    await startToHealthy(env.docker, amd64.image); // page cache warm-up, not counted
    const starts: number[] = [];
    for (let i = 0; i < runs; i++) starts.push(await startToHealthy(env.docker, amd64.image));

    say('rebuilds of linux/amd64: unchanged, then after a source-only change');
    const unchanged = await build(['linux/amd64']);
    const main = path.join(root, 'dist', 'function', 'main.js');
    await writeFile(main, `${await readFile(main, 'utf8')}\n// bench edit ${Date.now()}\n`);
    const changed = await build(['linux/amd64']);

    const figures = {
      cacheAtStart: cold ? 'emptied (BuildKit keeps its npm download cache mount)' : 'as found',
      images: first.images.map((i) => ({
        platform: i.platform,
        bytes: i.size,
        baseBytes: bases[i.platform] ?? 0,
        addedBytes: i.size - (bases[i.platform] ?? 0),
        buildSeconds: i.seconds,
      })),
      startToHealthMs: { median: median(starts), min: Math.min(...starts), max: Math.max(...starts), runs: starts },
      rebuildSeconds: { unchanged: unchanged.images[0]?.seconds ?? NaN, sourceChange: changed.images[0]?.seconds ?? NaN, firstBuild: amd64.seconds },
    };
    const amd64Fig = figures.images.find((i) => i.platform === 'linux/amd64');
    const ratios = {
      amd64SizeVsTarget: (amd64Fig?.bytes ?? 0) / TARGETS.amd64Bytes,
      startVsTarget: figures.startToHealthMs.median / TARGETS.startMs,
      rebuildVsTarget: figures.rebuildSeconds.sourceChange / TARGETS.rebuildSeconds,
      rebuildVsFirstBuild: figures.rebuildSeconds.sourceChange / figures.rebuildSeconds.firstBuild,
    };
    if (json) {
      process.stdout.write(`${JSON.stringify({ figures, ratios, targets: TARGETS }, null, 2)}\n`);
    } else {
      const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
      const out = [
        `image figures (test daemon, stand-in node:20-bookworm-slim; build cache ${figures.cacheAtStart} at start)`,
        'platform       image      base       added by pifaas   first build',
        ...figures.images.map((i) => `${i.platform.padEnd(14)} ${mb(i.bytes).padEnd(10)} ${mb(i.baseBytes).padEnd(10)} ${mb(i.addedBytes).padEnd(17)} ${i.buildSeconds.toFixed(1)} s`),
        `amd64 size / 300 MB target:              ${ratios.amd64SizeVsTarget.toFixed(2)}  (with the real node:20-bookworm-slim, add its size minus the stand-in's)`,
        `amd64 start to /_/health 200:            median ${figures.startToHealthMs.median.toFixed(0)} ms (min ${figures.startToHealthMs.min.toFixed(0)}, max ${figures.startToHealthMs.max.toFixed(0)}, ${runs} runs); / 2 s target: ${ratios.startVsTarget.toFixed(2)}`,
        `amd64 rebuild, nothing changed:          ${figures.rebuildSeconds.unchanged.toFixed(1)} s`,
        `amd64 rebuild after a source change:     ${figures.rebuildSeconds.sourceChange.toFixed(1)} s; / 30 s target: ${ratios.rebuildVsTarget.toFixed(2)}; / first build: ${ratios.rebuildVsFirstBuild.toFixed(2)}`,
      ];
      process.stdout.write(`${out.join('\n')}\n`);
    }
    for (const p of FUNCTION_PLATFORMS) await env.docker.getImage(`${REPO}:latest-${p.tagSuffix}`).remove({ force: true }).catch(() => undefined);
    await env.docker.getImage(`${REPO}:latest`).remove({ force: true }).catch(() => undefined);
  } finally {
    await rm(work, { recursive: true, force: true });
    await env.stop();
  }
}

await main();
