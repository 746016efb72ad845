// The function's HTTP contract, in-process against the real MobileNetV2: every input form, every
// bad input, of-watchdog behaviour (health before ready, max_inflight 429, read/write/exec timeouts,
// X-Duration-Seconds, drain), the OpenWhisk /init + /run contract, the URL-input SSRF policy, and
// that a request arriving during a run on the event loop counts as overlapping it.
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClassifier, type Classifier, type LoadedModel } from '../../src/function/classifier.js';
import { usableCores } from '../../src/function/cpu-quota.js';
import { FunctionServer, type FunctionServerOptions } from '../../src/function/function-server.js';
import { parseUrlPolicy } from '../../src/function/url-policy.js';
import { badInputCases, closedPort, getJson, image, imageUrlServer, post, type HttpAnswer } from './helpers.js';

type UrlServer = Awaited<ReturnType<typeof imageUrlServer>>;

let classifier: Classifier;
let urls: UrlServer;
const servers: FunctionServer[] = [];

async function serve(opts: Partial<FunctionServerOptions> = {}, ready = true): Promise<{ base: string; server: FunctionServer }> {
  const server = new FunctionServer({
    functionName: 'faas-resnet',
    readTimeoutMs: 10_000,
    writeTimeoutMs: 10_000,
    execTimeoutMs: 10_000,
    healthcheckIntervalMs: 0,
    maxInflight: 0,
    maxBodyBytes: 10 * 1024 * 1024,
    urlPolicy: parseUrlPolicy('127.0.0.1'),
    urlTimeoutMs: 5_000,
    ...opts,
  });
  servers.push(server);
  const { port } = await server.listen(0, '127.0.0.1');
  if (ready) server.ready(classifier);
  return { base: `http://127.0.0.1:${port}`, server };
}

function top1(a: HttpAnswer): number | undefined {
  return (a.json as { predictions?: Array<{ index: number }> }).predictions?.[0]?.index;
}

function errorOf(a: HttpAnswer): { code: string; message: string } {
  return (a.json as { error: { code: string; message: string } }).error;
}

beforeAll(async () => {
  [classifier, urls] = await Promise.all([startClassifier({ name: 'faas-resnet', model: 'mobilenetv2-12-int8', engine: 'node' }), imageUrlServer()]);
});

afterAll(async () => {
  for (const s of servers) await s.close().catch(() => {});
  await urls?.close();
  await classifier?.close();
});

describe('inputs', () => {
  let base: string;
  beforeAll(async () => {
    ({ base } = await serve());
  });

  it('raw JPEG bytes on /function/faas-resnet, / and any other path, with X-Duration-Seconds', async () => {
    for (const path of ['/function/faas-resnet', '/', '/anything/else', '/function/faas-resnet/deeper']) {
      const a = await post(base, path, image('tiger.jpg'), 'application/x-www-form-urlencoded'); // what curl --data-binary sends
      expect(a.status, path).toBe(200);
      expect(top1(a)).toBe(292);
      expect(a.json).toMatchObject({ function: 'faas-resnet', model: 'mobilenetv2-12-int8', engine: 'onnxruntime-node', image: { format: 'JPEG', width: 304, height: 166 } });
      expect(a.headers['x-duration-seconds']).toMatch(/^\d+\.\d{6}$/);
      expect(a.headers['content-type']).toBe('application/json; charset=utf-8');
    }
  });

  it('every format sharp reads: PNG, WebP, GIF, TIFF, AVIF (and JPEG without a content type)', async () => {
    const tiger = image('tiger.jpg');
    const forms: Array<[string, Buffer, string | undefined]> = [
      ['PNG', await sharp(tiger).png().toBuffer(), 'image/png'],
      ['WebP', await sharp(tiger).webp({ quality: 90 }).toBuffer(), 'image/webp'],
      ['GIF', await sharp(tiger).gif().toBuffer(), 'image/gif'],
      ['TIFF', await sharp(tiger).tiff().toBuffer(), 'image/tiff'],
      ['AVIF', await sharp(tiger).avif({ quality: 80 }).toBuffer(), 'image/avif'],
      ['JPEG', tiger, undefined],
    ];
    for (const [format, bytes, type] of forms) {
      const a = await post(base, '/', bytes, type);
      expect(a.status, format).toBe(200);
      expect((a.json as { image: { format: string } }).image.format).toBe(format);
      expect(top1(a), format).toBe(292);
    }
  });

  it('base64 text as `base64 x.png | faas-cli invoke` sends it (wrapped lines, text/plain), unwrapped without a type, and data: URLs', async () => {
    const b64 = image('kitten.png').toString('base64');
    const wrapped = `${b64.replace(/(.{76})/g, '$1\n')}\n`;
    for (const [body, type] of [
      [wrapped, 'text/plain'],
      [b64, undefined],
      [`data:image/png;base64,${b64}`, 'text/plain'],
    ] as const) {
      const a = await post(base, '/function/faas-resnet', body, type);
      expect(a.status).toBe(200);
      expect(top1(a)).toBe(281);
    }
  });

  it('JSON {"image": base64} and {"url": ...} (allowed host), with top from the JSON body or the query', async () => {
    const a = await post(base, '/', JSON.stringify({ image: image('squirrel.jpg').toString('base64'), top: 2 }), 'application/json');
    expect(a.status).toBe(200);
    expect(top1(a)).toBe(335);
    expect((a.json as { predictions: unknown[] }).predictions).toHaveLength(2);
    const b = await post(base, '/?top=4', JSON.stringify({ url: `${urls.url}/tiger.jpg` }), 'application/json');
    expect(b.status).toBe(200);
    expect(top1(b)).toBe(292);
    expect((b.json as { predictions: unknown[] }).predictions).toHaveLength(4);
    const c = await post(base, '/', JSON.stringify({ url: `${urls.url}/redirect` }), 'application/json');
    expect(top1(c)).toBe(292);
  });

  it('multipart/form-data as a browser form sends it', async () => {
    const form = new FormData();
    form.append('top', '1');
    form.append('photo', new Blob([image('coffee.png')], { type: 'image/png' }), 'coffee.png');
    const res = await fetch(`${base}/function/faas-resnet`, { method: 'POST', body: form });
    expect(res.headers.get('x-duration-seconds')).toMatch(/^\d+\.\d{6}$/);
    const json = (await res.json()) as { predictions: Array<{ index: number; label: string }> };
    expect(res.status).toBe(200);
    expect(json.predictions).toHaveLength(1);
    expect(json.predictions[0]).toMatchObject({ index: 967, label: 'espresso' });
  });

  it('?top=N picks how many labels come back', async () => {
    for (const n of [1, 3, 10]) {
      const a = await post(base, `/function/faas-resnet?top=${n}`, image('tiger.jpg'), 'image/jpeg');
      expect((a.json as { predictions: unknown[] }).predictions).toHaveLength(n);
    }
  });
});

describe('bad input: a 4xx that says what was wrong, and the next request is served', () => {
  let base: string;
  let dead: string;
  beforeAll(async () => {
    ({ base } = await serve());
    dead = `http://127.0.0.1:${await closedPort()}/x.jpg`;
  });

  it('answers each bad input with its status, code and message', async () => {
    const cases = await badInputCases({ base: urls.url, dead });
    for (const c of cases) {
      const a = await post(base, c.path ?? '/function/faas-resnet', c.body, c.contentType);
      expect(a.status, c.name).toBe(c.status);
      expect(errorOf(a).code, c.name).toBe(c.code);
      expect(errorOf(a).message, c.name).toMatch(c.message);
      expect(a.headers['x-duration-seconds'], c.name).toBeDefined();
      const ok = await post(base, '/function/faas-resnet', image('tiger.jpg'), 'image/jpeg');
      expect(ok.status, `after ${c.name}`).toBe(200);
    }
  });

  it('bounds chunked bodies too (no Content-Length), by PIFAAS_MAX_BODY_BYTES', async () => {
    const small = await serve({ maxBodyBytes: 64 * 1024 });
    const res = await fetch(`${small.base}/`, {
      method: 'POST',
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 8; i++) c.enqueue(new Uint8Array(16 * 1024));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/more than the limit of 65536 bytes/);
  });

  it('answers GET with 405, another function name with 404', async () => {
    const g = await fetch(`${base}/function/faas-resnet`);
    expect(g.status).toBe(405);
    expect(g.headers.get('allow')).toBe('POST');
    const other = await post(base, '/function/faas-digits', image('digit-4.png'), 'image/png');
    expect(other.status).toBe(404);
    expect(errorOf(other).message).toMatch(/this server runs faas-resnet, not faas-digits/);
  });
});

describe('URL input policy (SSRF)', () => {
  it('is off by default: 403 with what to do', async () => {
    const { base } = await serve({ urlPolicy: parseUrlPolicy(undefined) });
    const a = await post(base, '/', JSON.stringify({ url: `${urls.url}/tiger.jpg` }), 'application/json');
    expect(a.status).toBe(403);
    expect(errorOf(a)).toMatchObject({ code: 'url_input_disabled' });
    expect(errorOf(a).message).toMatch(/PIFAAS_URL_ALLOW/);
  });

  it('"*" allows public hosts only: loopback and private addresses are refused, by name or by address', async () => {
    const { base } = await serve({ urlPolicy: parseUrlPolicy('*') });
    const seen = urls.requests();
    const byAddress = await post(base, '/', JSON.stringify({ url: `${urls.url}/tiger.jpg` }), 'application/json');
    expect(byAddress.status).toBe(403);
    expect(errorOf(byAddress).message).toMatch(/fetching from 127\.0\.0\.1 is not allowed/);
    const byName = await post(base, '/', JSON.stringify({ url: `http://localhost:${urls.port}/tiger.jpg` }), 'application/json');
    expect(byName.status).toBe(403);
    expect(errorOf(byName).message).toMatch(/localhost resolves to .*which PIFAAS_URL_ALLOW does not allow/);
    const metadata = await post(base, '/', JSON.stringify({ url: 'http://169.254.169.254/latest/meta-data/' }), 'application/json');
    expect(metadata.status).toBe(403);
    expect(urls.requests()).toBe(seen);
  });

  it('a URL that does not answer within PIFAAS_URL_TIMEOUT gets 408', async () => {
    const { base } = await serve({ urlTimeoutMs: 300 });
    const a = await post(base, '/', JSON.stringify({ url: `${urls.url}/slow` }), 'application/json');
    urls.releaseSlow();
    expect(a.status).toBe(408);
    expect(errorOf(a)).toMatchObject({ code: 'url_timeout' });
    expect(errorOf(a).message).toMatch(/127\.0\.0\.1:\d+ did not answer within 0\.3 s/);
  });

  it('a host list allows exactly those hosts (and re-checks redirects)', async () => {
    const { base } = await serve({ urlPolicy: parseUrlPolicy('localhost') });
    expect((await post(base, '/', JSON.stringify({ url: `http://localhost:${urls.port}/tiger.jpg` }), 'application/json')).status).toBe(200);
    const other = await post(base, '/', JSON.stringify({ url: `${urls.url}/tiger.jpg` }), 'application/json');
    expect(other.status).toBe(403);
    expect(errorOf(other).message).toMatch(/127\.0\.0\.1 is not allowed by PIFAAS_URL_ALLOW/);
    const redirected = await post(base, '/', JSON.stringify({ url: `http://localhost:${urls.port}/redirect-to-ip` }), 'application/json');
    expect(redirected.status).toBe(403);
    expect(errorOf(redirected).message).toMatch(/fetching from 127\.0\.0\.1 is not allowed/);
  });
});

describe('of-watchdog contract', () => {
  it('/_/health is 503 until the model is ready, and requests get 503 not_ready meanwhile', async () => {
    const { base, server } = await serve({}, false);
    const before = await getJson(`${base}/_/health`);
    expect(before.status).toBe(503);
    expect(before.json.status).toBe('loading');
    const early = await post(base, '/', image('tiger.jpg'), 'image/jpeg');
    expect(early.status).toBe(503);
    expect(errorOf(early).code).toBe('not_ready');
    server.ready(classifier);
    const after = await getJson(`${base}/_/health`);
    expect(after.status).toBe(200);
    expect(after.json).toMatchObject({ status: 'ok', function: 'faas-resnet', engine: { name: 'onnxruntime-node' }, defaultModel: 'mobilenetv2-12-int8' });
    expect((await post(base, '/', image('tiger.jpg'), 'image/jpeg')).status).toBe(200);
  });

  it('answers 429 beyond max_inflight, and serves again once a slot is free', async () => {
    const { base } = await serve({ maxInflight: 1 });
    const slow = post(base, '/', JSON.stringify({ url: `${urls.url}/slow` }), 'application/json');
    await expect.poll(() => urls.slowRequests()).toBeGreaterThan(0);
    const rejected = await post(base, '/', image('tiger.jpg'), 'image/jpeg');
    expect(rejected.status).toBe(429);
    expect(errorOf(rejected).message).toMatch(/the limit is max_inflight=1/);
    const ready = await fetch(`${base}/_/ready`);
    expect(ready.status).toBe(429);
    urls.releaseSlow();
    expect((await slow).status).toBe(200);
    expect((await post(base, '/', image('tiger.jpg'), 'image/jpeg')).status).toBe(200);
  });

  it('exec_timeout answers 504 after that time', async () => {
    const { base } = await serve({ execTimeoutMs: 300 });
    const t0 = Date.now();
    const a = await post(base, '/', JSON.stringify({ url: `${urls.url}/slow` }), 'application/json');
    urls.releaseSlow();
    expect(a.status).toBe(504);
    expect(errorOf(a).code).toBe('exec_timeout');
    expect(Number(a.headers['x-duration-seconds'])).toBeGreaterThanOrEqual(0.29);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('write_timeout bounds the answer even when exec_timeout is longer', async () => {
    const { base } = await serve({ writeTimeoutMs: 300, execTimeoutMs: 5000 });
    const a = await post(base, '/', JSON.stringify({ url: `${urls.url}/slow` }), 'application/json');
    urls.releaseSlow();
    expect(a.status).toBe(504);
    expect(errorOf(a).code).toBe('write_timeout');
  });

  it('read_timeout: a request body that does not arrive in time gets 408', async () => {
    const { base } = await serve({ readTimeoutMs: 400 });
    const port = Number(new URL(base).port);
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000\r\n\r\n0123456789');
      });
      let got = '';
      sock.on('data', (d) => (got += d.toString()));
      sock.on('close', () => resolve(got));
      sock.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(answer).toMatch(/read_timeout/);
  });

  it('drain: health turns 503 at once, in-flight requests finish, new ones are refused', async () => {
    const { base, server } = await serve({ healthcheckIntervalMs: 300 });
    const inflight = post(base, '/', JSON.stringify({ url: `${urls.url}/slow` }), 'application/json');
    await expect.poll(() => server.inFlight).toBe(1);
    const drained = server.drain();
    const health = await getJson(`${base}/_/health`);
    expect(health.status).toBe(503);
    expect(health.json.status).toBe('draining');
    // During healthcheck_interval requests are still served (as of-watchdog does).
    expect((await post(base, '/', image('tiger.jpg'), 'image/jpeg')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 400));
    await expect(post(base, '/', image('tiger.jpg'), 'image/jpeg')).rejects.toThrow(/ECONNREFUSED/);
    urls.releaseSlow();
    expect(top1(await inflight)).toBe(292);
    await drained;
  });
});

describe('runs alone on the event loop', () => {
  // A run on the event loop hides the requests that arrive meanwhile. Here the run is made 100 ms
  // longer (the event loop held, as onnxruntime-node holds it), so that a second client, on a
  // connection opened before, surely sends its request during it (40 ms after the first is sent).
  // That request overlaps the first: it must go to an inference thread, not take its turn alone on
  // the event loop once the first is answered.
  it.skipIf(usableCores() < 2)('a request that arrived during a run on the event loop is not alone: it goes to an inference thread', async () => {
    const { base } = await serve();
    const port = Number(new URL(base).port);
    const model = classifier.models[0] as LoadedModel;
    const realRun = model.session.run.bind(model.session);
    model.session.run = (input, dims, opts = {}) => {
      let onEventLoop = false;
      return realRun(input, dims, { ...opts, ranOnEventLoop: () => (onEventLoop = true) }).then((out) => {
        if (onEventLoop) {
          const until = performance.now() + 100;
          while (performance.now() < until); // the event loop stays held, as during a longer run
          opts.ranOnEventLoop?.();
        }
        return out;
      });
    };
    const photo = image('tiger.jpg');
    const head = (n: number) => `POST /function/faas-resnet HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: ${n}\r\n\r\n`;
    // The second client lives on its own thread: it sends while this thread's event loop is held.
    const second = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const net = require('node:net');
       const socket = net.connect(workerData.port, '127.0.0.1', () => parentPort.postMessage('connected'));
       let answer = '';
       socket.on('data', (d) => { answer += d.toString('latin1'); if (/\\r\\n\\r\\n[\\s\\S]*\\}$/.test(answer)) { parentPort.postMessage(answer.split(' ')[1]); socket.end(); } });
       parentPort.on('message', () => setTimeout(() => socket.write(Buffer.concat([Buffer.from(workerData.head), workerData.photo])), 40));`,
      { eval: true, workerData: { port, head: head(photo.length), photo } },
    );
    try {
      const answers: string[] = [];
      const secondDone = new Promise<void>((resolve, reject) => {
        second.on('error', reject);
        second.on('message', (m: string) => {
          if (m === 'connected') return;
          answers.push(m);
          resolve();
        });
      });
      await new Promise<void>((resolve) => second.once('message', () => resolve()));
      await new Promise((r) => setTimeout(r, 250)); // no overlap for longer than the quiet time
      const before = { ...model.session.runs };
      second.postMessage('go');
      const first = await post(base, '/function/faas-resnet', photo, 'image/jpeg');
      await secondDone;
      expect([first.status, ...answers.map(Number)]).toEqual([200, 200]);
      expect(model.session.runs).toEqual({ eventLoop: before.eventLoop + 1, inferenceThreads: before.inferenceThreads + 1, allCores: before.allCores + 1 });
    } finally {
      model.session.run = realRun;
      await second.terminate();
    }
  });
});

describe('OpenWhisk Docker action contract', () => {
  it('/init once (200, then 403), /run {"value": {...}} answers a JSON object, errors as {"error": ...}', async () => {
    const { base } = await serve();
    const init = await post(base, '/init', JSON.stringify({ value: { name: 'faas-resnet', main: 'main', code: '', binary: false } }), 'application/json');
    expect(init.status).toBe(200);
    expect(init.json).toMatchObject({ ok: true });
    const again = await post(base, '/init', JSON.stringify({ value: {} }), 'application/json');
    expect(again.status).toBe(403);
    expect(errorOf(again).message).toMatch(/more than once/);
    const run = await post(
      base,
      '/run',
      JSON.stringify({ value: { image: image('tench.png').toString('base64'), top: 2 }, namespace: 'guest', action_name: '/guest/faas-resnet', activation_id: 'abc', deadline: Date.now() + 60_000 }),
      'application/json',
    );
    expect(run.status).toBe(200);
    expect(top1(run)).toBe(0);
    expect((run.json as { predictions: unknown[] }).predictions).toHaveLength(2);
    const bad = await post(base, '/run', JSON.stringify({ value: {} }), 'application/json');
    expect(bad.status).toBe(400);
    expect(Object.keys(bad.json as object)).toEqual(['error']);
    // /run with a plain image is still an ordinary invocation.
    expect(top1(await post(base, '/run', image('tiger.jpg'), 'image/jpeg'))).toBe(292);
  });

  it('/init waits for the model before answering', async () => {
    const { base, server } = await serve({}, false);
    const init = post(base, '/init', '{"value": {}}', 'application/json');
    await new Promise((r) => setTimeout(r, 100));
    server.ready(classifier);
    expect((await init).status).toBe(200);
  });
});
