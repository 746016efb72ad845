// Why: model files come from two places: bundled next to the catalog (or baked into an image), and
// downloaded into the user's XDG cache by `pifaas models pull` (or by faas-resnet at start-up). This
// module finds a model's file and downloads one safely: sha256 and size are checked before the file
// gets its final name, so the cache never holds a half or wrong file, and a mirror base URL serves
// air-gapped sites.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { boundedGet, HttpGetError } from './bounded-get.js';
import type { Catalog, ModelEntry } from './model-catalog.js';

/** $XDG_CACHE_HOME/pifaas/models, or ~/.cache/pifaas/models. */
export function modelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(env.HOME || os.homedir(), '.cache');
  return path.join(base, 'pifaas', 'models');
}

export type ModelLocation = { where: 'bundled' | 'cache'; path: string };

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    const s = await stat(file);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where a model's file is, if present with the catalog's size: the models folder first (bundled or
 * baked into an image), then the cache. Sizes are checked here; sha256 is checked when a file is
 * downloaded (and by `pifaas models verify`), so start-up stays fast.
 */
export async function locateModel(catalog: Catalog, model: ModelEntry, env: NodeJS.ProcessEnv = process.env): Promise<ModelLocation | undefined> {
  for (const [where, dir] of [
    ['bundled', catalog.dir],
    ['cache', modelCacheDir(env)],
  ] as const) {
    const file = path.join(dir, model.file);
    if ((await sizeOf(file)) === model.bytes) return { where, path: file };
  }
  return undefined;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The URL a model is downloaded from: `${mirror}/${file}` when a mirror is set, else its source URL. */
export function downloadUrl(model: ModelEntry, mirror?: string): string {
  if (mirror) return `${mirror.replace(/\/+$/, '')}/${encodeURIComponent(model.file)}`;
  return model.source.url;
}

export class ModelDownloadError extends Error {
  override readonly name = 'ModelDownloadError';
  constructor(
    message: string,
    readonly kind: 'network' | 'checksum' | 'size' | 'not-downloadable' | 'filesystem',
  ) {
    super(message);
  }
}

export interface PullOptions {
  /** Base URL serving the catalog's file names (PIFAAS_MODEL_MIRROR). */
  mirror?: string;
  env?: NodeJS.ProcessEnv;
  /** Whole-download deadline (default 30 min; a 100 MB model on a slow link). */
  timeoutMs?: number;
  /** Deadline for the server's first answer (DNS, connect, headers; default 60 s). */
  headersTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface PullResult {
  model: string;
  path: string;
  bytes: number;
  sha256: string;
  url: string;
  /** false when the file was already there (bundled or cached) and nothing was downloaded. */
  downloaded: boolean;
  where: 'bundled' | 'cache';
}

/**
 * Makes a model's file available: returns the bundled or cached file when present, else downloads it
 * into the cache. The download goes to a temporary name in the cache folder, is checked for size and
 * sha256, then renamed; on any failure the temporary file is removed.
 */
export async function pullModel(catalog: Catalog, model: ModelEntry, opts: PullOptions = {}): Promise<PullResult> {
  const env = opts.env ?? process.env;
  const mirror = opts.mirror ?? (env.PIFAAS_MODEL_MIRROR || undefined);
  const url = downloadUrl(model, mirror);
  const present = await locateModel(catalog, model, env);
  if (present) return { model: model.id, path: present.path, bytes: model.bytes, sha256: model.sha256, url, downloaded: false, where: present.where };
  if (!/^https?:\/\//.test(url)) {
    throw new ModelDownloadError(`model ${model.id} has no download URL (${url}) and its file ${model.file} is missing from ${catalog.dir}`, 'not-downloadable');
  }
  const dir = modelCacheDir(env);
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new ModelDownloadError(`cannot create the model cache ${dir}: ${(e as Error).message}`, 'filesystem');
  }
  await removeStalePartials(dir, model.file);
  const finalPath = path.join(dir, model.file);
  const partPath = path.join(dir, `${model.file}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  const hash = createHash('sha256');
  const fh = await open(partPath, 'wx', 0o644);
  let done = 0;
  let ok = false;
  try {
    try {
      await boundedGet(url, {
        maxBytes: model.bytes,
        timeoutMs: opts.timeoutMs ?? 30 * 60_000,
        headersTimeoutMs: opts.headersTimeoutMs ?? 60_000,
        ...(opts.signal ? { signal: opts.signal } : {}),
        onResponse: () => opts.onProgress?.(0, model.bytes),
        onData: async (chunk) => {
          hash.update(chunk);
          await fh.write(chunk);
          done += chunk.length;
          opts.onProgress?.(done, model.bytes);
        },
      });
    } catch (e) {
      if (e instanceof HttpGetError) {
        const what = e.kind === 'too-large' ? 'size' : 'network';
        throw new ModelDownloadError(`downloading ${model.id} from ${url} failed: ${e.message}`, what);
      }
      throw e;
    }
    if (done !== model.bytes) {
      throw new ModelDownloadError(`downloading ${model.id} from ${url} gave ${done} bytes, the catalog says ${model.bytes}`, 'size');
    }
    const sha = hash.digest('hex');
    if (sha !== model.sha256) {
      throw new ModelDownloadError(`the file downloaded from ${url} has sha256 ${sha}, the catalog expects ${model.sha256} for ${model.id}`, 'checksum');
    }
    await fh.sync();
    await fh.close();
    await rename(partPath, finalPath);
    ok = true;
    return { model: model.id, path: finalPath, bytes: done, sha256: sha, url, downloaded: true, where: 'cache' };
  } finally {
    if (!ok) {
      await fh.close().catch(() => {});
      await unlink(partPath).catch(() => {});
    }
  }
}

/** Removes temporary files an interrupted pull of this file left behind (their process is gone). */
async function removeStalePartials(dir: string, file: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^(.*)\.partial-(\d+)-[0-9a-f]+$/.exec(name);
    if (!m || m[1] !== file) continue;
    const pid = Number(m[2]);
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch {}
    if (!alive) await unlink(path.join(dir, name)).catch(() => {});
  }
}
