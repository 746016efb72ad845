// Why: the function's HTTP face. It speaks the OpenFaaS of-watchdog HTTP-mode contract itself (no
// separate watchdog process between the gateway and the model): /_/health is 200 only once the model
// is loaded and warmed, max_inflight answers 429, read/write/exec timeouts bound each request, every
// answer carries X-Duration-Seconds, and SIGTERM drains in-flight requests while refusing new ones.
// It also answers OpenWhisk's Docker action contract (POST /init, POST /run {"value": ...}), so one
// image serves OpenFaaS, plain Kubernetes and OpenWhisk.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Classification, Classifier } from './classifier.js';
import { errorBody, FunctionError } from './function-error.js';
import { heapHeadroomBytes } from './heap-headroom.js';
import type { FunctionName } from './model-catalog.js';
import { imageFromJson, mediaType, readImageRequest, type UrlFetchLimits } from './request-input.js';
import { InflightBoard } from './inflight-board.js';
import type { UrlPolicy } from './url-policy.js';

export interface FunctionServerOptions {
  functionName: FunctionName;
  readTimeoutMs: number;
  writeTimeoutMs: number;
  execTimeoutMs: number;
  healthcheckIntervalMs: number;
  maxInflight: number;
  maxBodyBytes: number;
  urlPolicy: UrlPolicy;
  urlTimeoutMs: number;
  /** One line per request and per lifecycle event; default: none. */
  log?: (line: string) => void;
  /** The requests in flight of every serving process (default: this process's, in memory). */
  board?: InflightBoard;
}

export interface Invocation {
  body: Buffer;
  contentType: string | undefined;
  query: URLSearchParams;
  signal?: AbortSignal;
}

/**
 * The function's in-process handler: request body -> image -> classification. The HTTP server calls
 * this; benchmarks call it directly to measure what HTTP adds.
 */
export async function invokeFunction(classifier: Classifier, inv: Invocation, limits: UrlFetchLimits): Promise<Classification> {
  const req = await readImageRequest(inv.body, inv.contentType, limits, inv.signal);
  const top = inv.query.get('top') ?? req.top;
  const model = inv.query.get('model') ?? req.model;
  return classifier.classify(req.image, { ...(top !== undefined ? { top } : {}), ...(model !== undefined ? { model } : {}), ...(inv.signal ? { signal: inv.signal } : {}) });
}

type Phase = 'loading' | 'ready' | 'failed' | 'unhealthy' | 'closing' | 'closed';

function seconds(startNs: bigint): string {
  return (Number(process.hrtime.bigint() - startNs) / 1e9).toFixed(6);
}

export class FunctionServer {
  private readonly server: http.Server;
  private classifier: Classifier | undefined;
  private phase: Phase = 'loading';
  private failure: string | undefined;
  /** This process's requests in flight (board.own), and with several serving processes the others'. */
  private readonly board: InflightBoard;
  private initialized = false;
  private readonly idleWaiters = new Set<() => void>();
  private readonly readyWaiters = new Set<() => void>();
  private drainPromise: Promise<void> | undefined;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: FunctionServerOptions) {
    this.board = opts.board ?? InflightBoard.inMemory();
    this.log = opts.log ?? (() => {});
    const read = opts.readTimeoutMs;
    this.server = http.createServer({
      // Go's ReadTimeout: the whole request (headers and body) must arrive within read_timeout; Node answers 408.
      requestTimeout: read,
      headersTimeout: read > 0 ? read : 60_000,
      connectionsCheckingInterval: read > 0 ? Math.max(50, Math.min(1000, Math.floor(read / 4))) : 30_000,
      keepAliveTimeout: 5_000,
    });
    this.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.onRequest(req, res).catch((err: unknown) => {
        // Last resort: a bug must not take the process down.
        this.log(`internal error: ${(err as Error).stack ?? String(err)}`);
        if (!res.headersSent) this.sendJson(res, 500, errorBody(new FunctionError(500, 'internal', 'internal error; see the function log')));
        else res.destroy();
      });
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && socket.writable) {
        socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n' + JSON.stringify(errorBody(new FunctionError(408, 'read_timeout', 'the request was not received within read_timeout'))));
        return;
      }
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
  }

  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** Starts listening (health answers 503 until ready()). */
  listen(port: number, host?: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.address);
      });
    });
  }

  /** The model is loaded and warmed: start answering. */
  ready(classifier: Classifier): void {
    this.classifier = classifier;
    if (this.phase === 'loading') this.phase = 'ready';
    for (const w of this.readyWaiters) w();
    this.readyWaiters.clear();
  }

  /** Loading failed: health reports it (the caller usually exits). */
  failed(message: string): void {
    this.failure = message;
    if (this.phase === 'loading') this.phase = 'failed';
    for (const w of this.readyWaiters) w();
    this.readyWaiters.clear();
  }

  get inFlight(): number {
    return this.board.own;
  }

  private sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    if (this.phase === 'closing' || this.phase === 'closed') headers.connection = 'close';
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  }

  private healthBody(): Record<string, unknown> {
    const status = this.phase === 'ready' ? 'ok' : this.phase === 'unhealthy' || this.phase === 'closing' || this.phase === 'closed' ? 'draining' : this.phase;
    return {
      status,
      function: this.opts.functionName,
      ...(this.failure ? { error: this.failure } : {}),
      ...(this.classifier ? this.classifier.info() : {}),
      inflight: this.board.own,
      maxInflight: this.opts.maxInflight,
      heapHeadroomBytes: heapHeadroomBytes(),
      ...(this.board.slots > 1 ? { servingProcess: { index: this.board.slot, of: this.board.slots, pid: process.pid } } : {}),
    };
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'http://function');
    const path = url.pathname;
    if (path === '/_/health' || path === '/_/ready') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        this.sendJson(res, 405, errorBody(new FunctionError(405, 'method_not_allowed', `${path} answers GET only`)), { allow: 'GET' });
        return;
      }
      let status = this.phase === 'ready' ? 200 : 503;
      // /_/ready (of-watchdog): also "not now" while max_inflight is reached.
      if (status === 200 && path === '/_/ready' && this.opts.maxInflight > 0 && this.board.total >= this.opts.maxInflight) status = 429;
      this.sendJson(res, status, this.healthBody());
      return;
    }
    const respond = (status: number, body: unknown) => {
      if (res.headersSent || res.destroyed) return;
      this.sendJson(res, status, body, { 'x-duration-seconds': seconds(started) });
      if (!path.startsWith('/_/')) this.log(`${req.method} ${path} - ${status} (${seconds(started)}s)`);
    };
    const fail = (err: FunctionError) => respond(err.status, errorBody(err));
    if (this.phase === 'closing' || this.phase === 'closed') {
      fail(new FunctionError(503, 'shutting_down', 'the function is shutting down; retry on another replica'));
      req.resume();
      return;
    }
    if (path === '/init' && req.method === 'POST') {
      await this.openWhiskInit(req, respond);
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      fail(new FunctionError(405, 'method_not_allowed', `send the image with POST (got ${req.method}); e.g. curl --data-binary @photo.jpg ${path}`));
      req.resume();
      return;
    }
    const fnPath = /^\/function\/([^/]+)/.exec(path);
    if (fnPath && fnPath[1] !== this.opts.functionName) {
      fail(new FunctionError(404, 'no_such_function', `this server runs ${this.opts.functionName}, not ${fnPath[1]}; POST to /function/${this.opts.functionName}`));
      req.resume();
      return;
    }
    const classifier = this.classifier;
    if (this.phase !== 'ready' && this.phase !== 'unhealthy') {
      fail(new FunctionError(503, 'not_ready', this.failure ? `the function failed to start: ${this.failure}` : 'the model is still loading; retry in a moment (GET /_/health says when it is ready)'));
      req.resume();
      return;
    }
    if (!classifier) throw new Error('ready without a classifier');
    // Counted first, then checked: requests arriving at once in two serving processes may both be
    // refused at the limit, but never both admitted beyond it.
    this.board.enter();
    if (this.opts.maxInflight > 0 && this.board.total > this.opts.maxInflight) {
      this.board.leave();
      fail(new FunctionError(429, 'too_many_requests', `${this.opts.maxInflight} requests are in flight, the limit is max_inflight=${this.opts.maxInflight}; retry later`));
      req.resume();
      return;
    }

    const exec = new AbortController();
    const timers: NodeJS.Timeout[] = [];
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      this.board.leave();
      if (this.board.own === 0) for (const w of this.idleWaiters) w();
    };
    // write_timeout: the answer must be out within this time of the request's arrival.
    timers.push(
      setTimeout(() => {
        if (!res.headersSent) respond(504, errorBody(new FunctionError(504, 'write_timeout', `no answer within write_timeout (${this.opts.writeTimeoutMs / 1000}s)`)));
        else res.destroy();
      }, this.opts.writeTimeoutMs),
    );
    let timedOut: Promise<never> = new Promise<never>(() => {});
    if (this.opts.execTimeoutMs > 0) {
      timedOut = new Promise<never>((_, reject) => {
        timers.push(
          setTimeout(() => {
            exec.abort();
            reject(new FunctionError(504, 'exec_timeout', `the function did not finish within exec_timeout (${this.opts.execTimeoutMs / 1000}s)`));
          }, this.opts.execTimeoutMs),
        );
      });
      timedOut.catch(() => {});
    }
    const limits: UrlFetchLimits = { policy: this.opts.urlPolicy, timeoutMs: this.opts.urlTimeoutMs, maxBytes: this.opts.maxBodyBytes };
    const work = (async () => {
      const body = await this.readBody(req);
      if (path === '/run') {
        const value = this.openWhiskValue(req, body);
        if (value !== undefined) {
          const image = await imageFromJson(value, limits, exec.signal);
          return classifier.classify(image.image, { ...(image.top !== undefined ? { top: image.top } : {}), ...(image.model !== undefined ? { model: image.model } : {}), signal: exec.signal });
        }
      }
      return invokeFunction(classifier, { body, contentType: req.headers['content-type'], query: url.searchParams, signal: exec.signal }, limits);
    })();
    work.then(finish, finish);
    try {
      const result = await Promise.race([work, timedOut]);
      respond(200, result);
    } catch (err) {
      if (err instanceof FunctionError) {
        // A 413 is sent while the client may still be uploading: Node discards the rest of the body
        // (bounded by read_timeout) so the client reads the answer instead of a reset connection.
        fail(err);
      } else {
        this.log(`error on ${req.method} ${path}: ${(err as Error).stack ?? String(err)}`);
        fail(new FunctionError(500, 'internal', `the function failed: ${(err as Error).message}`));
      }
    } finally {
      // The answer is out (or the connection is gone): no timer has anything left to bound.
      for (const t of timers) clearTimeout(t);
    }
  }

  /** OpenWhisk: {"value": {...}} posted to /run; anything else on /run is an ordinary invocation. */
  private openWhiskValue(req: http.IncomingMessage, body: Buffer): unknown {
    const type = mediaType(req.headers['content-type']);
    if (type !== 'application/json' && !(type === '' && body[0] === 0x7b)) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return undefined;
    }
    if (parsed && typeof parsed === 'object' && 'value' in parsed) {
      const value = (parsed as { value: unknown }).value;
      return value ?? {};
    }
    return undefined;
  }

  /** OpenWhisk /init: once, after the model is ready (a Docker action carries its own code). */
  private async openWhiskInit(req: http.IncomingMessage, respond: (status: number, body: unknown) => void): Promise<void> {
    req.resume();
    if (this.initialized) {
      respond(403, errorBody(new FunctionError(403, 'already_initialized', 'Cannot initialize the action more than once.')));
      return;
    }
    if (this.phase === 'loading') await new Promise<void>((resolve) => this.readyWaiters.add(resolve));
    if (this.phase === 'failed') {
      respond(502, errorBody(new FunctionError(502, 'init_failed', `the function failed to start: ${this.failure ?? 'unknown error'}`)));
      return;
    }
    this.initialized = true;
    respond(200, { ok: true, function: this.opts.functionName, model: this.classifier?.defaultModel });
  }

  private readBody(req: http.IncomingMessage): Promise<Buffer> {
    const max = this.opts.maxBodyBytes;
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > max) {
      req.resume();
      return Promise.reject(new FunctionError(413, 'body_too_large', `the body is ${declared} bytes, more than the limit of ${max} (PIFAAS_MAX_BODY_BYTES); send a smaller image`));
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      req.on('data', (chunk: Buffer) => {
        if (tooLarge) return;
        size += chunk.length;
        if (size > max) {
          tooLarge = true;
          chunks.length = 0;
          reject(new FunctionError(413, 'body_too_large', `the body is more than the limit of ${max} bytes (PIFAAS_MAX_BODY_BYTES); send a smaller image`));
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => {
        if (!tooLarge) resolve(Buffer.concat(chunks, size));
      });
      req.on('error', (err) => reject(new FunctionError(400, 'body_aborted', `the request body could not be read: ${err.message}`)));
      req.on('aborted', () => reject(new FunctionError(400, 'body_aborted', 'the client closed the connection before sending the whole body')));
    });
  }

  /**
   * Graceful shutdown (SIGTERM): health turns 503 at once; after healthcheck_interval new requests
   * are refused (503, connection closed) and the listening socket closes; in-flight requests finish
   * (up to write_timeout), then every connection is closed.
   */
  drain(): Promise<void> {
    this.drainPromise ??= (async () => {
      if (this.phase === 'ready' || this.phase === 'loading' || this.phase === 'failed') this.phase = 'unhealthy';
      this.log(`draining: ${this.board.own} request(s) in flight`);
      if (this.opts.healthcheckIntervalMs > 0) await sleep(this.opts.healthcheckIntervalMs);
      this.phase = 'closing';
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeIdleConnections();
      if (this.board.own > 0) {
        await Promise.race([new Promise<void>((resolve) => this.idleWaiters.add(resolve)), sleep(this.opts.writeTimeoutMs)]);
      }
      this.server.closeAllConnections();
      await closed;
      this.phase = 'closed';
      this.log('drained: all requests answered');
    })();
    return this.drainPromise;
  }

  /** Immediate stop (tests, errors): closes everything without waiting. */
  async close(): Promise<void> {
    this.phase = 'closed';
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}
