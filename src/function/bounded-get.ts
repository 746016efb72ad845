// Why: the function fetches images from URLs ({"url": ...}) and `pifaas models pull` downloads model
// files; both must never hang, never read more than a limit, re-check every redirect hop, and (for
// user-supplied URLs) check the address a host name resolves to at connect time, which fetch() cannot
// do. One small GET on node:http/https with those bounds serves both.
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';

export type HttpGetErrorKind = 'bad-url' | 'refused-url' | 'unreachable' | 'timeout' | 'status' | 'too-large' | 'truncated' | 'redirects' | 'aborted';

export class HttpGetError extends Error {
  override readonly name = 'HttpGetError';
  constructor(
    readonly kind: HttpGetErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface BoundedGetOptions {
  /** Refuse bodies larger than this (by Content-Length up front, else while reading). */
  maxBytes: number;
  /** Whole request deadline: connect, headers, body and redirects. */
  timeoutMs: number;
  /** Deadline for each response's headers (DNS, connect, server think time); default: timeoutMs. */
  headersTimeoutMs?: number;
  maxRedirects?: number;
  /** Throw (an HttpGetError 'refused-url') to refuse a URL; called for the first URL and every redirect. */
  checkUrl?: (url: URL) => void;
  /** Replaces DNS lookup for each connection (used to refuse private addresses). */
  lookup?: LookupFunction;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Called once the final response's headers are in, with its Content-Length when known. */
  onResponse?: (contentLength: number | undefined) => void;
  /** Receives the body chunk by chunk (awaited: backpressure); when set, the body is not collected. */
  onData?: (chunk: Buffer) => void | Promise<void>;
}

export interface BoundedGetResult {
  finalUrl: string;
  contentType: string | undefined;
  bytes: number;
  /** The body, unless onData consumed it. */
  body: Buffer | undefined;
}

function describeNetError(url: URL, err: NodeJS.ErrnoException): HttpGetError {
  if (err instanceof HttpGetError) return err;
  const where = url.host;
  switch (err.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new HttpGetError('unreachable', `cannot resolve host ${url.hostname} (${err.code})`);
    case 'ECONNREFUSED':
      return new HttpGetError('unreachable', `connection to ${where} refused`);
    case 'ECONNRESET':
      return new HttpGetError('unreachable', `connection to ${where} was reset`);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new HttpGetError('unreachable', `no route to ${where} (${err.code})`);
    default:
      return new HttpGetError('unreachable', `cannot reach ${where}: ${err.message}`);
  }
}

function parseUrl(raw: string | URL): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new HttpGetError('bad-url', `"${String(raw).slice(0, 200)}" is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HttpGetError('bad-url', `only http:// and https:// URLs can be fetched, not ${url.protocol}`);
  }
  if (url.username || url.password) throw new HttpGetError('bad-url', 'URLs with credentials are not fetched');
  return url;
}

/** GET a URL within the given size and time bounds, following up to maxRedirects redirects. */
export async function boundedGet(raw: string | URL, opts: BoundedGetOptions): Promise<BoundedGetResult> {
  const maxRedirects = opts.maxRedirects ?? 5;
  const deadline = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
  let url = parseUrl(raw);
  for (let hop = 0; ; hop++) {
    opts.checkUrl?.(url);
    const res = await requestOnce(url, opts, signal);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hop >= maxRedirects) throw new HttpGetError('redirects', `${url.host} redirected more than ${maxRedirects} times`);
      url = parseUrl(new URL(res.headers.location, url));
      continue;
    }
    if (status < 200 || status >= 300) {
      res.resume();
      throw new HttpGetError('status', `${url.host} answered HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''} for ${url.pathname}`, status);
    }
    return await readBody(url, res, opts, signal);
  }
}

function requestOnce(url: URL, opts: BoundedGetOptions, signal: AbortSignal): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError(url, opts));
      return;
    }
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.get(url, {
      headers: { 'user-agent': 'pifaas', accept: '*/*', ...opts.headers },
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
      agent: false,
    });
    const onAbort = () => req.destroy(abortError(url, opts));
    signal.addEventListener('abort', onAbort, { once: true });
    const headersTimer =
      opts.headersTimeoutMs !== undefined
        ? setTimeout(() => req.destroy(new HttpGetError('timeout', `${url.host} did not answer within ${formatSeconds(opts.headersTimeoutMs ?? 0)}`)), opts.headersTimeoutMs)
        : undefined;
    req.on('response', (res) => {
      clearTimeout(headersTimer);
      signal.removeEventListener('abort', onAbort);
      resolve(res);
    });
    req.on('error', (err) => {
      clearTimeout(headersTimer);
      signal.removeEventListener('abort', onAbort);
      reject(describeNetError(url, err));
    });
  });
}

/** Why the combined signal fired: the caller cancelled, or the deadline passed. */
function abortError(url: URL, opts: BoundedGetOptions): HttpGetError {
  if (opts.signal?.aborted) return new HttpGetError('aborted', `fetching ${url.host} was cancelled`);
  return new HttpGetError('timeout', `${url.host} did not answer within ${formatSeconds(opts.timeoutMs)}`);
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

async function readBody(url: URL, res: http.IncomingMessage, opts: BoundedGetOptions, signal: AbortSignal): Promise<BoundedGetResult> {
  const lengthHeader = res.headers['content-length'];
  const contentLength = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
  if (contentLength !== undefined && contentLength > opts.maxBytes) {
    res.destroy();
    throw new HttpGetError('too-large', `${url.host} sends ${contentLength} bytes, more than the limit of ${opts.maxBytes}`);
  }
  opts.onResponse?.(contentLength);
  const chunks: Buffer[] = [];
  let bytes = 0;
  const onAbort = () => res.destroy(abortError(url, opts));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > opts.maxBytes) {
        res.destroy();
        throw new HttpGetError('too-large', `${url.host} sends more than the limit of ${opts.maxBytes} bytes`);
      }
      if (opts.onData) await opts.onData(chunk);
      else chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof HttpGetError) throw err;
    if (signal.aborted) throw abortError(url, opts);
    throw new HttpGetError('truncated', `the transfer from ${url.host} broke off after ${bytes}${contentLength !== undefined ? ` of ${contentLength}` : ''} bytes (${(err as Error).message})`);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (contentLength !== undefined && bytes !== contentLength) {
    throw new HttpGetError('truncated', `the transfer from ${url.host} broke off after ${bytes} of ${contentLength} bytes`);
  }
  return {
    finalUrl: url.toString(),
    contentType: res.headers['content-type'],
    bytes,
    body: opts.onData ? undefined : Buffer.concat(chunks, bytes),
  };
}
