// Shared pieces for the function's tests: the real photos and their expected top-1s, a PNG
// decompression bomb built on the fly, small local HTTP servers (image URLs, model mirrors), and
// helpers to run main.ts / the CLI as real child processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = path.resolve(REPO, '..', 'shared');
export const IMAGES = path.join(SHARED, 'testdata', 'images');

export function image(name: string): Buffer {
  return readFileSync(path.join(IMAGES, name));
}

/** Expected top-1 per ../shared/testdata/README.md. */
export const PHOTOS: Array<{ file: string; mobilenet: number; shufflenet: number; what: string }> = [
  { file: 'tiger.jpg', mobilenet: 292, shufflenet: 292, what: 'tiger' },
  { file: 'kitten.png', mobilenet: 281, shufflenet: 281, what: 'tabby' },
  { file: 'coffee.png', mobilenet: 967, shufflenet: 967, what: 'espresso' },
  { file: 'squirrel.jpg', mobilenet: 335, shufflenet: 335, what: 'fox squirrel' },
  { file: 'tench.png', mobilenet: 0, shufflenet: 389, what: 'tench / barracouta' },
];

export const DIGITS: Array<{ file: string; digit: number }> = [
  { file: 'digit-0.png', digit: 0 },
  { file: 'digit-4.png', digit: 4 },
  { file: 'digit-5.jpg', digit: 5 },
  { file: 'digit-8.png', digit: 8 },
];

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A valid black 1-bit greyscale PNG of width x height: a tiny file with a huge decoded size. */
export async function bombPng(width: number, height: number): Promise<Buffer> {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 1;
  ihdr[9] = 0;
  const rowBytes = 1 + Math.ceil(width / 8);
  const rowsPerBlock = Math.max(1, Math.floor((1 << 20) / rowBytes));
  const block = Buffer.alloc(rowBytes * rowsPerBlock);
  const deflate = zlib.createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise<void>((resolve) => deflate.on('end', resolve));
  for (let y = 0; y < height; y += rowsPerBlock) {
    const rows = Math.min(rowsPerBlock, height - y);
    if (!deflate.write(block.subarray(0, rows * rowBytes))) await new Promise((r) => deflate.once('drain', r));
  }
  deflate.end();
  await done;
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', Buffer.concat(parts)), chunk('IEND', Buffer.alloc(0))]);
}

export interface LocalServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** A throwaway HTTP server on 127.0.0.1 with a random port. */
export async function localServer(handler: http.RequestListener): Promise<LocalServer> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = await localServer((_, res) => res.end());
  await s.close();
  return s.port;
}

export interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  /** Resolves with the first match of re in stdout+stderr. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** Runs a TypeScript entry (main.ts, the CLI) under node with tsx, as a real child process. */
export function runTs(entry: string, args: string[], env: NodeJS.ProcessEnv): Child {
  return spawnChild(process.execPath, ['--import', 'tsx', entry, ...args], env);
}

/** Runs a command from the repository's root as a real child process, collecting its output. */
export function spawnChild(command: string, args: string[], env: NodeJS.ProcessEnv): Child {
  const proc = spawn(command, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    for (const l of listeners) l();
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = (out + err).match(re);
          if (m) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${re}; stdout: ${out}\nstderr: ${err}`));
        }, timeoutMs);
        listeners.add(check);
        void exited.then(() => {
          check();
          if (listeners.has(check)) {
            listeners.delete(check);
            clearTimeout(timer);
            reject(new Error(`process exited before ${re}; stdout: ${out}\nstderr: ${err}`));
          }
        });
        check();
      });
    },
  };
}

/** A clean environment for child processes: no inherited function settings, a private cache. */
export function childEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'NODE_OPTIONS', 'TMPDIR']) if (process.env[k] !== undefined) env[k] = process.env[k];
  return { ...env, ...extra };
}

export const MAIN_TS = path.join(REPO, 'src', 'function', 'main.ts');
export const CLI_TS = path.join(REPO, 'test', 'function', 'run-cli.ts');

export interface RequestCase {
  name: string;
  path?: string;
  contentType?: string;
  body: Buffer | string;
  status: number;
  code: string;
  /** A fragment the error message must contain. */
  message: RegExp;
}

/**
 * Every kind of bad input the issue lists, each with the 4xx and message a caller must get.
 * `urls` serves: /big (over the size limit), /missing (404); `deadUrl` is a URL nothing listens on.
 */
export async function badInputCases(urls: { base: string; dead: string }): Promise<RequestCase[]> {
  const tiger = image('tiger.jpg');
  const random = Buffer.alloc(4096);
  for (let i = 0; i < random.length; i++) random[i] = (i * 7919 + 13) % 251;
  return [
    { name: 'empty body', body: Buffer.alloc(0), status: 400, code: 'empty_body', message: /the request body is empty/ },
    { name: 'random bytes', contentType: 'application/octet-stream', body: random, status: 400, code: 'not_an_image', message: /not an image \(expected JPEG, PNG, WebP, GIF, TIFF or AVIF\)/ },
    { name: 'truncated JPEG', contentType: 'image/jpeg', body: tiger.subarray(0, Math.floor(tiger.length / 2)), status: 400, code: 'bad_image', message: /JPEG image is corrupt or truncated/ },
    { name: '20000x20000 PNG (decompression bomb)', contentType: 'image/png', body: await bombPng(20000, 20000), status: 413, code: 'image_too_large', message: /20000x20000 \(400\.0 megapixels\), more than the limit of 50\.0 megapixels/ },
    { name: 'body over 10 MB', contentType: 'application/octet-stream', body: Buffer.alloc(10 * 1024 * 1024 + 1, 1), status: 413, code: 'body_too_large', message: /more than the limit of 10485760 \(PIFAAS_MAX_BODY_BYTES\)/ },
    { name: 'unknown content type', contentType: 'application/xml', body: '<image/>', status: 415, code: 'unsupported_content_type', message: /Content-Type application\/xml is not accepted/ },
    { name: 'SVG image', contentType: 'image/svg+xml', body: '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', status: 415, code: 'unsupported_image_format', message: /SVG images are not accepted/ },
    { name: 'bad base64', contentType: 'text/plain', body: 'iVBORw0KGgo!!!not base64', status: 400, code: 'bad_base64', message: /not valid base64: unexpected character "!" at offset 11/ },
    { name: 'base64 of something else', contentType: 'text/plain', body: Buffer.from('hello, world').toString('base64'), status: 400, code: 'not_an_image', message: /not an image/ },
    { name: 'bad JSON', contentType: 'application/json', body: '{"image": ', status: 400, code: 'bad_json', message: /the body is not valid JSON/ },
    { name: 'JSON without image or url', contentType: 'application/json', body: '{"picture": "x"}', status: 400, code: 'bad_json_fields', message: /neither "image" \(base64\) nor "url"/ },
    { name: 'JSON with bad base64 image', contentType: 'application/json', body: '{"image": "%%%"}', status: 400, code: 'bad_base64', message: /the "image" field is not valid base64/ },
    { name: 'unreachable URL', contentType: 'application/json', body: JSON.stringify({ url: urls.dead }), status: 400, code: 'url_unreachable', message: /cannot fetch the image URL: connection to 127\.0\.0\.1:\d+ refused/ },
    { name: 'too-large URL', contentType: 'application/json', body: JSON.stringify({ url: `${urls.base}/big` }), status: 413, code: 'url_too_large', message: /sends \d+ bytes, more than the limit of 10485760/ },
    { name: 'URL answering 404', contentType: 'application/json', body: JSON.stringify({ url: `${urls.base}/missing` }), status: 400, code: 'url_status', message: /answered HTTP 404/ },
    { name: 'URL with a bad scheme', contentType: 'application/json', body: JSON.stringify({ url: 'file:///etc/passwd' }), status: 400, code: 'bad_url', message: /only http:\/\/ and https:\/\/ URLs/ },
    { name: 'bad top', path: '/?top=0', contentType: 'image/jpeg', body: tiger, status: 400, code: 'bad_top', message: /top must be a whole number from 1 to 1000/ },
  ];
}

/** A server for URL input: /tiger.jpg, /big (11 MB), /missing (404), /slow (holds until released). */
export async function imageUrlServer(): Promise<LocalServer & { releaseSlow(): void; slowRequests(): number; requests(): number }> {
  const tiger = image('tiger.jpg');
  let waiting: Array<() => void> = [];
  let slow = 0;
  let all = 0;
  const s = await localServer((req, res) => {
    all++;
    if (req.url === '/tiger.jpg') {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': tiger.length });
      res.end(tiger);
    } else if (req.url === '/redirect') {
      res.writeHead(302, { location: '/tiger.jpg' });
      res.end();
    } else if (req.url === '/redirect-to-ip') {
      res.writeHead(302, { location: `http://127.0.0.1:${(req.socket.localPort ?? 0).toString()}/tiger.jpg` });
      res.end();
    } else if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': 11 * 1024 * 1024 });
      res.end(Buffer.alloc(11 * 1024 * 1024));
    } else if (req.url === '/slow') {
      slow++;
      waiting.push(() => {
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': tiger.length });
        res.end(tiger);
      });
    } else {
      res.writeHead(404);
      res.end('not here');
    }
  });
  return {
    ...s,
    releaseSlow() {
      const w = waiting;
      waiting = [];
      for (const f of w) f();
    },
    slowRequests: () => slow,
    requests: () => all,
  };
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: unknown;
}

/** POSTs with node:http (exact bytes, exact Content-Type, no automatic headers beyond Content-Length). */
export function post(base: string, path: string, body: Buffer | string, contentType?: string, extraHeaders: Record<string, string> = {}): Promise<HttpAnswer> {
  const data = typeof body === 'string' ? Buffer.from(body) : body;
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method: 'POST', headers: { 'content-length': String(data.length), ...(contentType ? { 'content-type': contentType } : {}), ...extraHeaders } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

export async function getJson(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the pifaas CLI in this process (what a user sees on stdout/stderr, and the exit code), with
 * extra environment variables set for the run. Faster than a child process for commands that need
 * no signals; `serve` is tested as a real child process.
 */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const { main } = await import('../../src/cli.js');
  const saved: NodeJS.ProcessEnv = {};
  for (const k of Object.keys(env)) {
    saved[k] = process.env[k];
    process.env[k] = env[k];
  }
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  const savedCode = process.exitCode;
  process.exitCode = undefined;
  try {
    await main(['node', 'pifaas', ...args]);
    return { code: Number(process.exitCode ?? 0), stdout, stderr };
  } finally {
    process.exitCode = savedCode;
    process.stdout.write = out;
    process.stderr.write = err;
    for (const k of Object.keys(saved)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}
