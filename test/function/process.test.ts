// The function as real processes: the container entry (src/function/main.ts, what `node
// dist/function/main.js` runs) with its environment contract, 503 while loading, every bad input
// without a crash, graceful SIGTERM drain; and `pifaas serve` answering the gateway's curl on localhost.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badInputCases, childEnv, CLI_TS, closedPort, getJson, image, imageUrlServer, localServer, MAIN_TS, post, runCli, runTs, spawnChild, type Child, type HttpAnswer, type LocalServer } from './helpers.js';

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
    // (Once released, the mirror says 404 at once: a serving process started later asks it again.)
    let released = false;
    mirror = await localServer((_req, res) => {
      const notFound = () => {
        res.writeHead(404);
        res.end();
      };
      if (released) return notFound();
      releaseMirror = () => {
        released = true;
        notFound();
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
      void fn.waitFor(/SIGTERM: refusing new requests, finishing/).then(async () => {
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

describe('where runs go in one process (the default; requests from this one)', () => {
  type ModelHealth = { threads: { aloneOn: string; sideBySide: { runs: number } }; runs: { eventLoop: number; inferenceThreads: number; allCores: number } };
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
    expect(one.runs).toEqual({ eventLoop: before.runs.eventLoop + 10, inferenceThreads: before.runs.inferenceThreads, allCores: before.runs.allCores + 10 });

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
    expect((await modelHealth(base)).runs).toEqual({ eventLoop: 0, inferenceThreads: before.runs.inferenceThreads + 5, allCores: before.runs.allCores + 5 });
  });
});

describe('garbage collection under load (heap-headroom.ts)', () => {
  it('four clients: V8 collects the young generation as it fills, and does not keep collecting the whole heap', async () => {
    const c = track(spawnChild(process.execPath, ['--trace-gc', '--import', 'tsx', MAIN_TS], childEnv({ PIFAAS_FUNCTION: 'faas-resnet', PIFAAS_MODEL: 'mobilenetv2-12-int8', port: '0' })));
    const m = await c.waitFor(/listening on port (\d+)/);
    await c.waitFor(/ready in \d+ ms/);
    const base = `http://127.0.0.1:${m[1]}`;
    // The headroom is made in slices right after the function turns ready.
    await expect.poll(async () => (await getJson(`${base}/_/health`)).json.heapHeadroomBytes, { timeout: 30_000, interval: 200 }).toBe(16 * 1024 * 1024);
    const count = (re: RegExp) => (c.stdout().match(re) ?? []).length;
    const before = { major: count(/: Mark-Compact /g), minor: count(/: Scavenge /g) };
    const tiger = image('tiger.jpg');
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 400; i++) expect((await post(base, '/function/faas-resnet', tiger, 'image/jpeg')).status).toBe(200);
      }),
    );
    const minor = count(/: Scavenge /g) - before.minor;
    const major = count(/: Mark-Compact /g) - before.major;
    // 1600 requests allocate enough to fill the young generation many times over. Without the
    // headroom, V8 marked the whole heap again as soon as it had finished: 39 major collections here
    // (against 8 scavenges).
    expect(minor).toBeGreaterThanOrEqual(5);
    expect(major).toBeLessThanOrEqual(2);
  }, 180_000);
});

describe('serving processes (PIFAAS_PROCESSES=2)', () => {
  type Health = { servingProcess: { index: number; of: number; pid: number }; inflight: number; models: Array<{ runs: { eventLoop: number; inferenceThreads: number; allCores: number } }> };
  const tiger = image('tiger.jpg');

  /** A client with one kept-alive connection: the function hands each new connection to the next serving process. */
  function client(base: string) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const call = (method: string, path: string, body?: Buffer) =>
      new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
        const req = http.request(`${base}${path}`, { agent, method, headers: body ? { 'content-type': 'image/jpeg', 'content-length': String(body.length) } : {} }, (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
        });
        req.on('error', reject);
        req.end(body);
      });
    return {
      agent,
      health: async () => (await call('GET', '/_/health')).json as unknown as Health,
      classify: () => call('POST', '/function/faas-resnet', tiger),
      /** Top-1 of one request, and that it was answered 200. */
      top1: async () => {
        const a = await call('POST', '/function/faas-resnet', tiger);
        expect(a.status).toBe(200);
        return (a.json.predictions as Array<{ index: number }>)[0]?.index;
      },
      close: () => agent.destroy(),
    };
  }
  type Client = ReturnType<typeof client>;

  /** Clients until one per serving process (in index order). */
  async function onePerProcess(base: string): Promise<Client[]> {
    const found: Client[] = [];
    for (let i = 0; i < 8 && found.length < 2; i++) {
      const c = client(base);
      const h = await c.health();
      if (found.some((f) => f !== undefined && found.indexOf(f) === h.servingProcess.index)) c.close();
      else found[h.servingProcess.index] = c;
    }
    expect(found.filter(Boolean)).toHaveLength(2);
    return found;
  }

  async function start(extra: NodeJS.ProcessEnv = {}): Promise<{ child: Child; base: string }> {
    const child = track(runTs(MAIN_TS, [], childEnv({ PIFAAS_FUNCTION: 'faas-resnet', PIFAAS_MODEL: 'mobilenetv2-12-int8', port: '0', PIFAAS_PROCESSES: '2', ...extra })));
    const m = await child.waitFor(/listening on port (\d+)/);
    await child.waitFor(/serving from 2 processes/);
    return { child, base: `http://127.0.0.1:${m[1]}` };
  }

  it('start with one set of start-up lines; each connection stays with one process; both answer alike; SIGTERM drains both', async () => {
    const { child, base } = await start();
    const lines = child.stdout().trim().split('\n');
    expect(lines.filter((l) => /listening on port/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /ready in \d+ ms: mobilenetv2-12-int8 \(bundled\) on onnxruntime-node .*; starting 1 more serving process/.test(l))).toHaveLength(1);
    const clients = await onePerProcess(base);
    const pids = await Promise.all(clients.map(async (c) => (await c.health()).servingProcess));
    expect(pids.map((p) => p.index)).toEqual([0, 1]);
    expect(new Set(pids.map((p) => p.pid)).size).toBe(2);
    for (const c of clients) {
      expect(await c.top1()).toBe(292);
      expect((await c.health()).servingProcess).toEqual(pids[clients.indexOf(c)]);
    }
    for (const c of clients) c.close();
    child.proc.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    expect(child.stdout()).toMatch(/SIGTERM: refusing new requests, finishing the requests in flight \(2 serving processes\)/);
    for (const p of pids) expect(() => process.kill(p.pid, 0)).toThrow();
  });

  it('one client runs alone, on all cores; clients in both processes at once run on their share of the cores', async () => {
    const { base } = await start();
    const [a, b] = (await onePerProcess(base)) as [Client, Client];
    const runsOf = async () => (await Promise.all([a.health(), b.health()])).map((h) => h.models[0]?.runs ?? { eventLoop: 0, inferenceThreads: 0, allCores: 0 });
    const sum = (rs: Array<{ allCores: number; eventLoop: number; inferenceThreads: number }>) => ({ all: rs.reduce((n, r) => n + r.eventLoop + r.inferenceThreads, 0), allCores: rs.reduce((n, r) => n + r.allCores, 0) });
    await new Promise((r) => setTimeout(r, 300));
    const before = sum(await runsOf());
    for (let i = 0; i < 10; i++) expect(await a.top1()).toBe(292);
    const one = sum(await runsOf());
    expect(one).toEqual({ all: before.all + 10, allCores: before.allCores + 10 });
    // Pairs sent together, then two clients each sending a little after its answer (as over a network).
    // (A busy machine may hold one client back long enough that a pair does not overlap: the bound
    // leaves room for that; with each process unaware of the other, all 80 would run on all cores.)
    for (let i = 0; i < 20; i++) expect(await Promise.all([a.top1(), b.top1()])).toEqual([292, 292]);
    const paced = async (c: Client) => {
      for (let i = 0; i < 20; i++) {
        expect(await c.top1()).toBe(292);
        await new Promise((r) => setTimeout(r, 3));
      }
    };
    await Promise.all([paced(a), paced(b)]);
    const two = sum(await runsOf());
    expect(two.all).toBe(one.all + 80);
    expect(two.allCores - one.allCores).toBeLessThanOrEqual(16);
    // After a quiet moment, alone again.
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 3; i++) expect(await b.top1()).toBe(292);
    expect(sum(await runsOf()).allCores).toBe(two.allCores + 3);
    a.close();
    b.close();
  });

  it('max_inflight counts the requests of every process', async () => {
    const { base } = await start({ max_inflight: '1' });
    const [a, b] = (await onePerProcess(base)) as [Client, Client];
    // An upload in progress in process 0: in flight there.
    const answer = new Promise<number>((resolve, reject) => {
      const req = http.request(`${base}/function/faas-resnet`, { agent: a.agent, method: 'POST', headers: { 'content-type': 'image/jpeg', 'content-length': String(tiger.length) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.write(tiger.subarray(0, 5000));
      setTimeout(() => req.end(tiger.subarray(5000)), 600);
    });
    await new Promise((r) => setTimeout(r, 200));
    const refused = await b.classify();
    expect(refused.status).toBe(429);
    expect(refused.json).toMatchObject({ error: { code: 'too_many_requests', message: expect.stringMatching(/max_inflight=1; retry later/) } });
    expect(await answer).toBe(200);
    expect(await b.top1()).toBe(292);
    a.close();
    b.close();
  });

  it('a serving process that dies stops the function with one line (exit 1), so that it is restarted whole', async () => {
    const { child, base } = await start();
    const [, b] = (await onePerProcess(base)) as [Client, Client];
    const { pid } = (await b.health()).servingProcess;
    b.close();
    process.kill(pid, 'SIGKILL');
    expect(await child.exited).toBe(1);
    expect(child.stderr().trim()).toBe('pifaas function: serving process 1 stopped (SIGKILL); stopping the function so that it is restarted whole');
  });

  it('a serving process stopped by a signal of its own (Ctrl-C reaches every process of a terminal) stops the function cleanly', async () => {
    const { child, base } = await start();
    const [a] = (await onePerProcess(base)) as [Client, Client];
    const { pid } = (await a.health()).servingProcess;
    a.close();
    process.kill(pid, 'SIGINT');
    expect(await child.exited).toBe(0);
    expect(child.stdout()).toMatch(/a serving process stopped: refusing new requests, finishing the requests in flight \(2 serving processes\)/);
    expect(child.stderr()).toBe('');
  });

  it('a temporary folder that cannot be written: says so in one line, then serves from one process', async () => {
    // A temporary "folder" that is a file (tsx, which runs main.ts here, would keep its cache there).
    const notAFolder = path.join(cacheDir, 'not-a-folder');
    await writeFile(notAFolder, '');
    const child = track(runTs(MAIN_TS, [], childEnv({ PIFAAS_FUNCTION: 'faas-resnet', PIFAAS_MODEL: 'mobilenetv2-12-int8', port: '0', PIFAAS_PROCESSES: '2', TMPDIR: notAFolder, TSX_DISABLE_CACHE: '1' })));
    const m = await child.waitFor(/listening on port (\d+)/);
    await child.waitFor(/ready in \d+ ms/);
    const said = child.stdout().split('\n').filter((l) => /shared folder/.test(l));
    expect(said).toHaveLength(1);
    expect(said[0]).toContain(`cannot make the serving processes' shared folder in ${notAFolder} (ENOTDIR`);
    expect(said[0]).toMatch(/; serving from one process \(make the temporary folder writable, or set PIFAAS_PROCESSES=1\)$/);
    const c = client(`http://127.0.0.1:${m[1]}`);
    const health = await c.health();
    expect(health.servingProcess).toBeUndefined();
    expect(await c.top1()).toBe(292);
    c.close();
  });

  it('a model that cannot be served: the same one line and exit code 1 as in one process', async () => {
    const run = async (processes: string) => {
      const c = track(runTs(MAIN_TS, [], childEnv({ PIFAAS_FUNCTION: 'faas-digits', PIFAAS_MODEL: 'mobilenetv2-12-int8', port: '0', PIFAAS_PROCESSES: processes })));
      expect(await c.exited).toBe(1);
      return c.stderr().trim();
    };
    const one = await run('1');
    expect(one).toMatch(/^pifaas function: cannot start faas-digits: .*mobilenetv2-12-int8/);
    expect(await run('2')).toBe(one);
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
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/error: unknown function "faas-cats"\nhint: pifaas serve runs faas-resnet or faas-digits/);
    const badModel = await runCli(['serve', 'faas-digits', '--port', '0', '--model', 'resnet50-v2-7']);
    expect(badModel.code).toBe(1);
    expect(badModel.stderr).toMatch(/error: cannot start faas-digits: faas-digits serves digit models \(mnist-8, digits-8x8\); resnet50-v2-7 is an ImageNet model/);
  });
});
