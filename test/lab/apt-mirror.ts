// Why: lab nodes have no route out (as an air-gapped site), so a node made without Docker installs
// docker.io from a LAN mirror: Debian's .deb files of this machine's Docker packages (downloaded once
// into a cache reused across runs), indexed by dpkg-scanpackages and served over HTTP on the lab
// bridge address. Nothing here writes to this machine's dpkg database or its apt state.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { DOCKER_PACKAGES } from '../../src/lab/lab-node-scripts.js';

const run = promisify(execFile);

export const DEB_CACHE_DIR = process.env.PIFAAS_LAB_DEB_CACHE ?? '/var/cache/pifaas/lab-debs';

export interface DebFolder {
  dir: string;
  /** package=version of each .deb in the folder. */
  packages: string[];
}

/**
 * The .deb files of the Docker packages installed on this machine (same versions, so they fit the
 * node's other libraries), fetched with `apt-get download` only when the cache lacks one, and a
 * Packages(.gz) index over them.
 */
export async function dockerDebFolder(dir = DEB_CACHE_DIR): Promise<DebFolder> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const { stdout } = await run('dpkg-query', ['-W', '-f', '${Package}=${Version}=${Architecture}\\n', ...DOCKER_PACKAGES]);
  const wanted = stdout
    .trim()
    .split('\n')
    .map((l) => l.split('='))
    .map(([pkg, version, arch]) => ({ pkg: pkg ?? '', version: version ?? '', file: `${pkg}_${(version ?? '').replace(/:/g, '%3a')}_${arch}.deb` }));
  const have = new Set(await readdir(dir));
  const missing = wanted.filter((w) => !have.has(w.file));
  if (missing.length) {
    try {
      await run('apt-get', ['download', '-q', ...missing.map((w) => `${w.pkg}=${w.version}`)], { cwd: dir, timeout: 10 * 60_000 });
    } catch (e) {
      throw new Error(`apt-get download ${missing.map((w) => w.pkg).join(' ')} failed (this machine needs deb.debian.org): ${(e as { stderr?: string }).stderr ?? String(e)}`);
    }
  }
  const { stdout: index } = await run('dpkg-scanpackages', ['--multiversion', '.'], { cwd: dir, maxBuffer: 16 << 20 });
  await writeFile(path.join(dir, 'Packages'), index);
  await writeFile(path.join(dir, 'Packages.gz'), gzipSync(index));
  return { dir, packages: wanted.map((w) => `${w.pkg}=${w.version}`) };
}

export interface FolderServer {
  url: string;
  /** Paths asked for, in order (the test sees what apt fetched). */
  requests: string[];
  close(): Promise<void>;
}

/** Serves the files directly in `dir` (no listing, no subfolders) on address:port. */
export async function serveFolder(dir: string, address: string, port: number): Promise<FolderServer> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
    requests.push(`/${name}`);
    const file = path.join(dir, name);
    if (!name || name.includes('/') || name.startsWith('.')) {
      res.writeHead(404).end();
      return;
    }
    stat(file).then(
      (s) => {
        if (!s.isFile()) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-length': s.size, 'content-type': 'application/octet-stream' });
        if (req.method === 'HEAD') return void res.end();
        createReadStream(file).pipe(res);
      },
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  return {
    url: `http://${address}:${port}/`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
