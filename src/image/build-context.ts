// Why: an image build needs only a few megabytes of the pifaas package (the lock file, the compiled
// function in dist/function, the Dockerfiles and the one model being baked) - not node_modules or every model. This
// picks the model(s) to bake from the catalog (bundled, or downloaded by `pifaas models pull`) and
// lays out that small build context in a temporary folder, the same for the Docker Engine API path
// and for buildx.
import { cp, copyFile, link, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CatalogError, findModel, isFunctionName, loadCatalog, type Catalog, type FunctionName } from '../function/model-catalog.js';
import { locateModel } from '../function/model-store.js';
import { UserError } from '../user-error.js';

/** The pifaas package root (this file is src/image/ or dist/image/, two levels below it). */
export function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

export interface BakedModel {
  id: string;
  file: string;
  bytes: number;
  /** Where the file was found: next to the catalog, or in the download cache. */
  where: 'bundled' | 'cache';
  path: string;
}

export interface ModelChoice {
  function: FunctionName;
  /** PIFAAS_MODEL of the image: the model served by default ("" = the function's own choice among `models`). */
  model: string;
  /** Every model baked in. */
  models: BakedModel[];
  /** Said to the user when the function's default model could not be baked. */
  notice?: string;
}

async function catalogFrom(root: string): Promise<Catalog> {
  try {
    return await loadCatalog(path.join(root, 'models'));
  } catch (e) {
    if (e instanceof CatalogError) throw new UserError(e.message, 'reinstall pifaas: its models/catalog.json is missing or damaged');
    throw e;
  }
}

/**
 * Which models go into the image: --model when given; else all of faas-digits' models (it picks by
 * input size), or faas-resnet's default model when it is on this machine, otherwise its bundled
 * fallback (with a notice saying how to bake the default).
 */
export async function chooseModels(functionName: string, modelId?: string, env: NodeJS.ProcessEnv = process.env, root = packageRoot()): Promise<ModelChoice> {
  if (!isFunctionName(functionName)) {
    throw new UserError(`unknown function "${functionName}"`, 'pifaas builds faas-resnet (ImageNet photos) and faas-digits (handwritten digits)');
  }
  const catalog = await catalogFrom(root);
  const fn = catalog.functions[functionName];
  const locate = async (id: string): Promise<BakedModel | undefined> => {
    const entry = findModel(catalog, id);
    const loc = await locateModel(catalog, entry, env);
    return loc ? { id, file: entry.file, bytes: entry.bytes, where: loc.where, path: loc.path } : undefined;
  };
  const need = async (id: string): Promise<BakedModel> => {
    const found = await locate(id);
    if (!found) throw new UserError(`model ${id} is not on this machine, so it cannot be baked into the image`, `download it first: pifaas models pull ${id}`);
    return found;
  };
  if (modelId) {
    if (!fn.models.includes(modelId)) {
      throw new UserError(`${functionName} does not serve the model "${modelId}"`, `choose one of: ${fn.models.join(', ')} (pifaas models list)`);
    }
    return { function: functionName, model: modelId, models: [await need(modelId)] };
  }
  if (fn.task === 'digits') {
    return { function: functionName, model: '', models: await Promise.all(fn.models.map(need)) };
  }
  const preferred = await locate(fn.defaultModel);
  if (preferred) return { function: functionName, model: preferred.id, models: [preferred] };
  if (!fn.fallbackModel) return { function: functionName, model: fn.defaultModel, models: [await need(fn.defaultModel)] };
  const fallback = await need(fn.fallbackModel);
  return {
    function: functionName,
    model: fallback.id,
    models: [fallback],
    notice: `${fn.defaultModel} is not downloaded, so the image bakes ${fallback.id}; to bake ${fn.defaultModel}: pifaas models pull ${fn.defaultModel}, then build again`,
  };
}

/** Files of the package every build context holds (besides dist/ and the chosen models). */
export const CONTEXT_FILES = [
  'package.json',
  'package-lock.json',
  'docker/Dockerfile.amd64',
  'docker/Dockerfile.armhf',
  'docker/function-deps.json',
  'docker/function-deps.mjs',
  'docker/bake-model.mjs',
] as const;

export interface BuildContext {
  dir: string;
  /** Top-level entries of dir, as the Engine API client packs them. */
  entries: string[];
  /** Bytes in the context. */
  bytes: number;
  cleanup(): Promise<void>;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true });
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}

async function du(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await du(p);
    else if (e.isFile()) total += (await stat(p)).size;
  }
  return total;
}

/** Where Node would find an installed package from `root` (its node_modules, then the parents'). */
async function installedVersion(root: string, name: string): Promise<string | undefined> {
  for (let dir = root; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'node_modules', name, 'package.json');
    if (await exists(file)) return (JSON.parse(await readFile(file, 'utf8')) as { version?: string }).version;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/**
 * pifaas installed from npm has no package-lock.json (npm never publishes one): the image then gets
 * the function's packages at exactly the versions installed with pifaas.
 */
async function pinnedPackageJson(root: string): Promise<string> {
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const deps = JSON.parse(await readFile(path.join(root, 'docker', 'function-deps.json'), 'utf8')) as { common: string[]; engines: Record<string, string[]> };
  for (const name of [...deps.common, ...Object.values(deps.engines).flat()]) {
    const version = await installedVersion(root, name);
    if (!version) throw new UserError(`${name} is not installed next to pifaas in ${root}`, 'reinstall pifaas (npm install -g pifaas), or build from a clone with npm ci');
    pkg.dependencies = { ...pkg.dependencies, [name]: version };
  }
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

/** Lays out the build context for one function image in a fresh temporary folder. */
export async function makeBuildContext(choice: ModelChoice, root = packageRoot()): Promise<BuildContext> {
  const main = path.join(root, 'dist', 'function', 'main.js');
  if (!(await exists(main))) {
    throw new UserError(`${main} is missing: the function is not compiled`, `run \`npm run build\` in ${root} first`);
  }
  const locked = await exists(path.join(root, 'package-lock.json'));
  const dir = await mkdtemp(path.join(tmpdir(), 'pifaas-build-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    for (const f of CONTEXT_FILES) {
      if (f === 'package-lock.json' && !locked) continue;
      if (f === 'package.json' && !locked) await writeFile(path.join(dir, f), await pinnedPackageJson(root));
      else await linkOrCopy(path.join(root, f), path.join(dir, f));
    }
    // The function imports only within src/function (test/image/function-deps.test.ts checks it).
    await cp(path.join(root, 'dist', 'function'), path.join(dir, 'dist', 'function'), {
      recursive: true,
      filter: (src) => !/\.(map|d\.ts)$/.test(src),
    });
    const catalog = await catalogFrom(root);
    const modelsDir = path.join(dir, 'models');
    await mkdir(modelsDir, { recursive: true });
    await copyFile(path.join(catalog.dir, 'catalog.json'), path.join(modelsDir, 'catalog.json'));
    if (await exists(path.join(catalog.dir, 'PROVENANCE.md'))) await copyFile(path.join(catalog.dir, 'PROVENANCE.md'), path.join(modelsDir, 'PROVENANCE.md'));
    for (const m of choice.models) {
      await linkOrCopy(m.path, path.join(modelsDir, m.file));
      const labels = findModel(catalog, m.id).labels.file;
      if (!(await exists(path.join(modelsDir, labels)))) await copyFile(path.join(catalog.dir, labels), path.join(modelsDir, labels));
    }
    return { dir, entries: ['package.json', ...(locked ? ['package-lock.json'] : []), 'docker', 'dist', 'models'], bytes: await du(dir), cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** The package version, for the images' OCI labels. */
export async function packageVersion(root = packageRoot()): Promise<string> {
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}
