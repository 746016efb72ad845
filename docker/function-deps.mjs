// Why: the function image must hold only the function's npm packages (function-deps.json), at the
// exact versions of the project's package-lock.json, built for the TARGET platform while this step runs
// on the BUILD platform (no emulation): this script cuts a package.json + package-lock.json down to those
// packages and what they need, runs `npm ci` with npm's --cpu/--os/--libc for the target, and then
// drops what the target can never use (other OSes' onnxruntime binaries, browser-only WebAssembly
// builds, source maps, type declarations).
//
// Runs inside the Dockerfiles' deps stage with plain Node (no dependencies of its own):
//   node function-deps.mjs install --engines node,web --arch amd64 --src /src --out /build/app
//   node function-deps.mjs manifest --engines web --src . --out /tmp/app    (only the cut-down manifest)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Docker's TARGETARCH -> npm's --cpu and onnxruntime-node's bin folder name. */
const ARCHES = {
  amd64: { npmCpu: 'x64' },
  arm64: { npmCpu: 'arm64' },
  arm: { npmCpu: 'arm' },
};

/** Files onnxruntime-web needs under Node (its "node" export loads the threaded SIMD WebAssembly build). */
const ORT_WEB_KEEP = new Set(['ort.node.min.mjs', 'ort.node.min.js', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm']);

function fail(message) {
  process.stderr.write(`function-deps: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const out = { command: argv[0] };
  for (let i = 1; i < argv.length; i += 2) {
    const key = argv[i]?.replace(/^--/, '');
    if (!key || argv[i + 1] === undefined) fail(`missing value after ${argv[i]}`);
    out[key] = argv[i + 1];
  }
  return out;
}

/** Where Node would find `name` when required from the package at lock path `from` ("" = root). */
function resolveInLock(packages, from, name) {
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!dir) return undefined;
    const idx = dir.lastIndexOf('/node_modules/');
    dir = idx >= 0 ? dir.slice(0, idx) : '';
  }
}

/** The lock entries the named packages need (dependencies, optional and peer), transitively. */
function lockClosure(lock, names) {
  const packages = lock.packages ?? {};
  const keep = new Map();
  const queue = [];
  for (const name of names) {
    const at = resolveInLock(packages, '', name);
    if (!at) fail(`"${name}" is not in package-lock.json: run npm install in the project first`);
    queue.push(at);
  }
  while (queue.length) {
    const path = queue.shift();
    if (keep.has(path)) continue;
    const entry = packages[path];
    keep.set(path, entry);
    const deps = { ...entry.dependencies, ...entry.optionalDependencies, ...entry.peerDependencies };
    for (const dep of Object.keys(deps)) {
      const at = resolveInLock(packages, path, dep);
      const optional = dep in (entry.optionalDependencies ?? {}) || entry.peerDependenciesMeta?.[dep]?.optional;
      if (at) queue.push(at);
      else if (!optional) fail(`package-lock.json has no entry for ${dep}, needed by ${path}`);
    }
  }
  return keep;
}

/**
 * Writes out/package.json (and out/package-lock.json when src has a lock file); returns whether a
 * lock was written. Without one (pifaas installed from npm, which never ships lock files), pifaas
 * build has pinned the function's packages to the versions installed with it.
 */
function writeManifest(src, out, names) {
  const pkg = JSON.parse(readFileSync(join(src, 'package.json'), 'utf8'));
  const ranges = {};
  for (const name of names) {
    const range = pkg.dependencies?.[name];
    if (!range) fail(`"${name}" is not in package.json's dependencies`);
    ranges[name] = range;
  }
  const app = { name: 'pifaas-function', version: pkg.version, private: true, type: 'module', dependencies: ranges };
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'package.json'), `${JSON.stringify(app, null, 2)}\n`);
  if (!existsSync(join(src, 'package-lock.json'))) return { locked: false, count: names.length };
  const lock = JSON.parse(readFileSync(join(src, 'package-lock.json'), 'utf8'));
  if (lock.lockfileVersion < 2) fail('package-lock.json must be lockfileVersion 2 or 3 (npm 7 or newer)');
  const closure = lockClosure(lock, names);
  const packages = { '': { name: app.name, version: app.version, dependencies: ranges } };
  for (const [path, entry] of [...closure.entries()].sort(([a], [b]) => a.localeCompare(b))) packages[path] = entry;
  writeFileSync(join(out, 'package-lock.json'), `${JSON.stringify({ name: app.name, version: app.version, lockfileVersion: 3, requires: true, packages }, null, 2)}\n`);
  return { locked: true, count: closure.size };
}

function walk(dir, visit) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) continue;
    if (visit(path, name, st) === false) continue;
    if (st.isDirectory()) walk(path, visit);
  }
}

function sizeOf(dir) {
  let total = 0;
  walk(dir, (_p, _n, st) => {
    if (st.isFile()) total += st.size;
  });
  return total;
}

function prune(nodeModules, npmCpu) {
  const ortNodeBin = join(nodeModules, 'onnxruntime-node/bin/napi-v6');
  if (existsSync(ortNodeBin)) {
    for (const os of readdirSync(ortNodeBin)) {
      for (const cpu of readdirSync(join(ortNodeBin, os))) {
        if (os !== 'linux' || cpu !== npmCpu) rmSync(join(ortNodeBin, os, cpu), { recursive: true, force: true });
      }
    }
    if (!existsSync(join(ortNodeBin, 'linux', npmCpu))) fail(`onnxruntime-node has no linux/${npmCpu} binary: build this platform with docker/Dockerfile.armhf (onnxruntime-web)`);
  }
  const ortWebDist = join(nodeModules, 'onnxruntime-web/dist');
  if (existsSync(ortWebDist)) {
    for (const f of readdirSync(ortWebDist)) if (!ORT_WEB_KEEP.has(f)) rmSync(join(ortWebDist, f), { recursive: true, force: true });
    rmSync(join(nodeModules, 'onnxruntime-web/lib'), { recursive: true, force: true });
    rmSync(join(nodeModules, 'onnxruntime-web/docs'), { recursive: true, force: true });
  }
  // sharp's WebAssembly fallback is only used where no native build exists; the target has one.
  rmSync(join(nodeModules, '@img/sharp-wasm32'), { recursive: true, force: true });
  // The function only decodes JPEGs with @jsquash/jpeg (src/function/jpeg-decoder.ts), never encodes.
  rmSync(join(nodeModules, '@jsquash/jpeg/codec/enc'), { recursive: true, force: true });
  // zod ships its TypeScript sources next to the compiled files.
  rmSync(join(nodeModules, 'zod/src'), { recursive: true, force: true });
  walk(nodeModules, (path, name, st) => {
    if (st.isFile() && (/\.(map|d\.ts|d\.cts|d\.mts|tsbuildinfo)$/.test(name) || /^(CHANGELOG|HISTORY)(\.md)?$/i.test(name))) {
      rmSync(path, { force: true });
    }
  });
}

/** Writes out/package.json + out/package-lock.json for the engines' packages; returns their names. */
function manifest(args) {
  const deps = JSON.parse(readFileSync(join(here, 'function-deps.json'), 'utf8'));
  const engines = (args.engines ?? '').split(',').filter(Boolean);
  if (engines.length === 0 || engines.some((e) => !deps.engines[e])) fail(`--engines must list some of: ${Object.keys(deps.engines).join(', ')}`);
  const names = [...deps.common, ...engines.flatMap((e) => deps.engines[e])];
  const { locked, count } = writeManifest(args.src, args.out, names);
  process.stdout.write(`function-deps: ${names.join(', ')} -> ${locked ? `${count} packages pinned by package-lock.json` : 'no lock file: versions pinned in package.json'}\n`);
  return locked;
}

function install(args) {
  const arch = ARCHES[args.arch];
  if (!arch) fail(`unsupported target architecture "${args.arch}" (supported: ${Object.keys(ARCHES).join(', ')})`);
  const locked = manifest(args);
  const out = args.out;
  process.stdout.write(`function-deps: installing for linux/${args.arch} (npm --cpu=${arch.npmCpu} --os=linux --libc=glibc)\n`);
  const npmCommand = locked ? ['ci'] : ['install', '--no-package-lock'];
  execFileSync('npm', [...npmCommand, '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=warn', `--cpu=${arch.npmCpu}`, '--os=linux', '--libc=glibc'], {
    cwd: out,
    stdio: 'inherit',
  });
  const nodeModules = join(out, 'node_modules');
  const before = sizeOf(nodeModules);
  prune(nodeModules, arch.npmCpu);
  const after = sizeOf(nodeModules);
  process.stdout.write(`function-deps: node_modules ${(before / 1e6).toFixed(1)} MB -> ${(after / 1e6).toFixed(1)} MB after pruning\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = parseArgs(process.argv.slice(2));
  if (args.command === 'install') install(args);
  else if (args.command === 'manifest') manifest(args);
  else fail('usage: node function-deps.mjs install|manifest --engines node[,web] [--arch amd64|arm64|arm] --src DIR --out DIR');
}
