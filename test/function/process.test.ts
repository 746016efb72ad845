// The function as real processes: the container entry (src/function/main.ts, what `node
// dist/function/main.js` runs) with its environment contract, 503 while loading, every bad input
// without a crash, graceful SIGTERM drain; and `pifaas serve` answering the gateway's curl on localhost.
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badInputCases, childEnv, CLI_TS, closedPort, getJson, image, imageUrlServer, localServer, MAIN_TS, post, runCli, runTs, type Child, type HttpAnswer, type LocalServer } from './helpers.js';

const children: Child[] = [];
let cacheDir: string;

beforeAll(async () => {
  cacheDir = await mkdtemp(path.join(os.tmpdir(), 'pifaas-process-cache-'));
});

function track(c: Child): Child {
  children.push(c);
  return c;
}

afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
});

describe('container entry (main.ts)', () => {
  let mirror: LocalServer;
  let releaseMirror: (() => void) | undefined;
  let urls: Awaited<ReturnType<typeof imageUrlServer>>;
  let fn: Child;
  let base: string;

  beforeAll(async () => {
    // The ResNet download at start-up hangs on this mirror until released: the function is "loading".
    mirror = await localServer((_req, res) => {
      releaseMirror = () => {
        res.writeHead(404);
        res.end();
      };
    });
    urls = await imageUrlServer();
    fn = track(
      runTs(MAIN_TS, [], childEnv({
        PIFAAS_FUNCTION: 'faas-resnet',
        port: '0',
        XDG_CACHE_HOME: cacheDir,
        PIFAAS_MODEL_MIRROR: mirror.url,
        PIFAAS_URL_ALLOW: '127.0.0.1',
        write_timeout: '20s',
      })),
    );
    const m = await fn.waitFor(/listening on port (\d+)/);
    base = `http://127.0.0.1:${m[1]}`;
  });

  afterAll(async () => {
    await mirror?.close();
    await urls?.close();
  });

  it('answers 503 on /_/health and on invocations while loading, 200 once ready; says in one line it fell back to MobileNetV2', async () => {
    const loading = await getJson(`${base}/_/health`);
    expect(loading.status).toBe(503);
    expect(loading.json.status).toBe('loading');
    const early = await post(base, '/function/faas-resnet', image('tiger.jpg'), 'image/jpeg');
    expect(early.status).toBe(503);
    await expect.poll(() => releaseMirror !== undefined).toBe(true);
    releaseMirror?.();
    await fn.waitFor(/ready in \d+ ms/);
    const ready = await getJson(`${base}/_/health`);
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ status: 'ok', function: 'faas-resnet', defaultModel: 'mobilenetv2-12-int8', engine: { name: 'onnxruntime-node' } });
    const fallbackLines = fn.stdout().split('\n').filter((l) => /resnet50-v1-12-int8/.test(l));
    expect(fallbackLines).toHaveLength(1);
    expect(fallbackLines[0]).toMatch(/resnet50-v1-12-int8 weights are not cached and cannot be fetched \(.*HTTP 404.*\); serving the bundled mobilenetv2-12-int8 instead/);
    const a = await post(base, '/function/faas-resnet', image('tiger.jpg'), 'image/jpeg');
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ model: 'mobilenetv2-12-int8' });
  });

  it('survives every bad input and keeps serving', async () => {
    const cases = await badInputCases({ base: urls.url, dead: `http://127.0.0.1:${await closedPort()}/x.jpg` });
    for (const c of cases) {
      const a = await post(base, c.path ?? '/', c.body, c.contentType);
      expect(a.status, c.name).toBe(c.status);
      expect((a.json as { error: { code: string } }).error.code, c.name).toBe(c.code);
    }
    expect(fn.proc.exitCode).toBe(null);
    const ok = await post(base, '/', image('squirrel.jpg'), 'image/jpeg');
    expect(ok.status).toBe(200);
  });

  it('SIGTERM: the request in flight is answered, new connections are refused, the process exits 0', async () => {
    const tiger = image('tiger.jpg');
    const port = Number(new URL(base).port);
    // An upload in progress: headers and half the body are sent, the rest comes after SIGTERM.
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/function/faas-resnet', headers: { 'content-type': 'image/jpeg', 'content-length': tiger.length } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write(tiger.subarray(0, 5000));
      void fn.waitFor(/SIGTERM: refusing new requests, finishing 1 in flight/).then(async () => {
        await new Promise((r) => setTimeout(r, 200));
        // The listening socket is closed by now.
        await expect(post(base, '/', tiger, 'image/jpeg')).rejects.toThrow(/ECONNREFUSED/);
        req.end(tiger.subarray(5000));
      });
    });
    await new Promise((r) => setTimeout(r, 200));
    fn.proc.kill('SIGTERM');
    const a = await answer;
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body).predictions[0].index).toBe(292);
    expect(await fn.exited).toBe(0);
    expect(fn.stdout()).toMatch(/drained: all requests answered/);
  });

  it('refuses a bad configuration with one clear line and exit code 1', async () => {
    const bad = track(runTs(MAIN_TS, [], childEnv({ PIFAAS_FUNCTION: 'faas-cats', port: '0' })));
    expect(await bad.exited).toBe(1);
    expect(bad.stderr().trim()).toBe('pifaas function: bad configuration: PIFAAS_FUNCTION must be faas-resnet or faas-digits, not "faas-cats"');
  });
});

describe('where runs go (a function process, requests from this one)', () => {
  type ModelHealth = { threads: { aloneOn: string; sideBySide: { runs: number } }; runs: { eventLoop: number; inferenceThreads: number } };
  const modelHealth = async (base: string): Promise<ModelHealth> => ((await getJson(`${base}/_/health`)).json.models as ModelHealth[])[0] as ModelHealth;
  const tiger = image('tiger.jpg');
  /** One client: n requests, each sent `pauseMs` after the answer before (a network's round trip). */
  const sequential = async (base: string, n: number, pauseMs = 0) => {
    for (let i = 0; i < n; i++) {
      expect(top1Of(await post(base, '/function/faas-resnet', tiger, 'image/jpeg'))).toBe(292);
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  };
  const top1Of = (a: HttpAnswer) => (a.json as { predictions: Array<{ index: number }> }).predictions[0]?.index;

  async function start(extra: NodeJS.ProcessEnv): Promise<string> {
    const c = track(runTs(MAIN_TS, [], childEnv({ PIFAAS_FUNCTION: 'faas-resnet', PIFAAS_MODEL: 'mobilenetv2-12-int8', port: '0', ...extra })));
    const m = await c.waitFor(/listening on port (\d+)/);
    await c.waitFor(/ready in \d+ ms/);
    return `http://127.0.0.1:${m[1]}`;
  }

  it('one client: each run goes on the event loop; two at once: side by side on inference threads, then the event loop again after a quiet moment', async () => {
    const base = await start({});
    const before = await modelHealth(base);
    if (before.threads.sideBySide.runs < 2) {
      // One core: no shared sessions to take overlapping requests, so no run holds the event loop.
      expect(before.threads.aloneOn).toBe('inference thread');
      return;
    }
    expect(before.threads.aloneOn).toBe('event loop');
    await sequential(base, 10);
    const one = await modelHealth(base);
    expect(one.runs).toEqual({ eventLoop: before.runs.eventLoop + 10, inferenceThreads: before.runs.inferenceThreads });

    // Two clients sending together, 20 times. When one request's run holds the event loop as the other
    // arrives, the other is read only after that run, when nothing else is in flight; it still counts
    // as overlapping, and runs on an inference thread.
    // Then two clients each sending its next request a little after its answer (as over a network).
    // (A busy machine may hold one client back long enough that a pair does not overlap: the bounds
    // leave room for that; with every request alone on the event loop, all 80 would be there.)
    for (let i = 0; i < 20; i++) await Promise.all([sequential(base, 1), sequential(base, 1)]);
    await Promise.all([sequential(base, 20, 3), sequential(base, 20, 3)]);
    const two = await modelHealth(base);
    expect(two.runs.inferenceThreads - one.runs.inferenceThreads).toBeGreaterThanOrEqual(64);
    expect(two.runs.eventLoop + two.runs.inferenceThreads).toBe(one.runs.eventLoop + one.runs.inferenceThreads + 80);

    await new Promise((r) => setTimeout(r, 300));
    await sequential(base, 3);
    expect((await modelHealth(base)).runs.eventLoop).toBe(two.runs.eventLoop + 3);
  });

  it('a request that arrives while a run holds the event loop does not run alone after it', async () => {
    const base = await start({});
    if ((await modelHealth(base)).threads.aloneOn !== 'event loop') return; // one core
    // Rounds further apart than the quiet time after an overlap. In each, request A goes alone (on the
    // event loop) and B follows 1 ms later from another connection: B arrives during A's decode or run
    // and is read by then or right after the run, when A is done and nothing else is in flight.
    let overlapped = 0;
    let bothOnEventLoop = 0;
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 150));
      const before = await modelHealth(base);
      let aAnswered = false;
      const a = post(base, '/function/faas-resnet', tiger, 'image/jpeg').then((r) => ((aAnswered = true), r));
      await new Promise((r) => setTimeout(r, 1));
      const bWhileA = !aAnswered;
      const b = post(base, '/function/faas-resnet', tiger, 'image/jpeg');
      expect((await Promise.all([a, b])).map(top1Of)).toEqual([292, 292]);
      const after = await modelHealth(base);
      expect(after.runs.eventLoop + after.runs.inferenceThreads).toBe(before.runs.eventLoop + before.runs.inferenceThreads + 2);
      if (!bWhileA) continue;
      overlapped++;
      if (after.runs.eventLoop === before.runs.eventLoop + 2) bothOnEventLoop++;
    }
    // (A round may still count when B reached the server only after A's answer had left it.)
    expect(overlapped).toBeGreaterThanOrEqual(6);
    expect(bothOnEventLoop).toBeLessThanOrEqual(3);
  });

  it('PIFAAS_INLINE_RUN_MAX=0: every run goes to an inference thread', async () => {
    const base = await start({ PIFAAS_INLINE_RUN_MAX: '0' });
    const before = await modelHealth(base);
    expect(before.threads.aloneOn).toBe('inference thread');
    await sequential(base, 5);
    expect((await modelHealth(base)).runs).toEqual({ eventLoop: 0, inferenceThreads: before.runs.inferenceThreads + 5 });
  });
});

describe('pifaas serve', () => {
  it('faas-resnet with no model flags: says it serves the bundled MobileNetV2, answers the gateway-style curl, drains on Ctrl-C', async () => {
    const port = await closedPort();
    const s = track(runTs(CLI_TS, ['serve', 'faas-resnet', '--port', String(port)], childEnv({ XDG_CACHE_HOME: cacheDir, PIFAAS_MODEL_MIRROR: `http://127.0.0.1:${await closedPort()}` })));
    await s.waitFor(/ready on http:\/\/127\.0\.0\.1:\d+\/function\/faas-resnet/);
    expect(s.stderr()).toMatch(/resnet50-v1-12-int8 weights are not cached and cannot be fetched \(connection to 127\.0\.0\.1:\d+ refused\); serving the bundled mobilenetv2-12-int8 instead/);
    const base = `http://127.0.0.1:${port}`;
    const a = await post(base, '/function/faas-resnet', image('tiger.jpg'), 'application/x-www-form-urlencoded');
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ function: 'faas-resnet', model: 'mobilenetv2-12-int8', predictions: expect.arrayContaining([expect.objectContaining({ index: 292, label: 'tiger, Panthera tigris' })]) });
    expect((await post(base, '/function/faas-digits', image('digit-4.png'), 'image/png')).status).toBe(404);
    s.proc.kill('SIGINT');
    expect(await s.exited).toBe(0);
    expect(s.stderr()).toMatch(/stopped/);
  });

  it('faas-digits on the WebAssembly engine picks the model by image size', async () => {
    const s = track(runTs(CLI_TS, ['serve', 'faas-digits', '--port', '0', '--engine', 'web'], childEnv({})));
    const m = await s.waitFor(/ready on (http:\/\/127\.0\.0\.1:\d+)\/function\/faas-digits/);
    const base = m[1] ?? '';
    const a = await post(base, '/function/faas-digits', image('digit-8.png'), 'image/png');
    expect(a.json).toMatchObject({ function: 'faas-digits', model: 'mnist-8', engine: 'onnxruntime-web' });
    expect((a.json as { predictions: Array<{ label: string }> }).predictions[0]?.label).toBe('8');
    s.proc.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  });

  it('a wrong function or a model of the wrong kind is a clear error', async () => {
    const wrong = await runCli(['serve', 'faas-cats']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/error: unknown function "faas-cats"\nhint: pifaas serve runs faas-resnet or faas-digits/);
    const badModel = await runCli(['serve', 'faas-digits', '--port', '0', '--model', 'resnet50-v2-7']);
    expect(badModel.code).toBe(1);
    expect(badModel.stderr).toMatch(/error: cannot start faas-digits: faas-digits serves digit models \(mnist-8, digits-8x8\); resnet50-v2-7 is an ImageNet model/);
  });
});
