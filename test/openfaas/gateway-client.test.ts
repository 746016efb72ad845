import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FunctionNotFoundError,
  GatewayClient,
  GatewayError,
  GatewayUnauthorizedError,
  GatewayUnreachableError,
  normalizeGatewayUrl,
} from '../../src/openfaas/gateway-client.js';
import { deployFunction, FunctionNotReadyError, resolveTarget, waitUntilReady } from '../../src/openfaas/function-deploy.js';
import { parseStackFile, stackFunction } from '../../src/openfaas/stack-file.js';
import { FakeGateway } from './fake-gateway.js';

let gw: FakeGateway;
const creds = () => ({ username: gw.username, password: gw.password });

/** V8's collector, to show that a time limit survives garbage collection (as it must in a long run). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

async function listen(srv: HttpServer): Promise<string> {
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const STACK = `
provider: {name: openfaas, gateway: http://127.0.0.1:8080}
functions:
  echo-fn:
    image: example/echo:1.0
    environment: {exec_timeout: 60s}
    labels: {com.openfaas.scale.min: 2}
    limits: {memory: 128M, cpu: 500m}
    constraints: [node.platform.os == linux, node.platform.arch == aarch64]
`;

describe('gateway client against a gateway that answers as the OpenAPI spec says (faas-swarm)', () => {
  beforeEach(async () => {
    gw = new FakeGateway({ provider: 'faas-swarm', readyAfterPolls: 2 });
    await gw.start();
  });
  afterEach(async () => gw.stop());

  it('reads health and system info (provider, orchestration)', async () => {
    const c = new GatewayClient({ url: gw.url, credentials: creds() });
    expect(await c.healthy()).toBe(true);
    const info = await c.info();
    expect(info.provider?.provider).toBe('faas-swarm');
    expect(info.provider?.orchestration).toBe('swarm');
    expect(info.version?.release).toBe('0.18.18');
  });

  it('sends basic auth on /system/* and never on /function/*', async () => {
    const c = new GatewayClient({ url: gw.url, credentials: creds() });
    await c.deploy({ service: 'echo-fn', image: 'example/echo:1.0' });
    for (let i = 0; i < 2; i++) await c.getFunction('echo-fn');
    const answer = await c.invoke('echo-fn', Buffer.from('hello'), { contentType: 'text/plain' });
    expect(JSON.parse(answer.body.toString()).sawAuthorization).toBe(false);
    const sys = gw.requests.filter((r) => r.path.startsWith('/system/'));
    expect(sys.length).toBeGreaterThan(0);
    expect(sys.every((r) => r.authorization === `Basic ${Buffer.from(`admin:${gw.password}`).toString('base64')}`)).toBe(true);
    expect(gw.requests.find((r) => r.path === '/function/echo-fn')?.authorization).toBeUndefined();
  });

  it('deploys with POST after PUT says 404, and updates with PUT alone', async () => {
    const c = new GatewayClient({ url: gw.url, credentials: creds() });
    expect(await c.deploy({ service: 'echo-fn', image: 'example/echo:1.0' })).toBe('created');
    expect(gw.calls()).toEqual(['PUT /system/functions', 'POST /system/functions']);
    expect(JSON.parse(gw.requests[1]!.body.toString())).toEqual({ service: 'echo-fn', image: 'example/echo:1.0' });
    gw.requests.length = 0;
    expect(await c.deploy({ service: 'echo-fn', image: 'example/echo:1.1' })).toBe('updated');
    expect(gw.calls()).toEqual(['PUT /system/functions']);
    expect(gw.functions.get('/echo-fn')?.deployment.image).toBe('example/echo:1.1');
  });

  it('turns a stack.yml function into the FunctionDeployment faas-swarm reads (nano-CPUs, labels as strings)', async () => {
    const c = new GatewayClient({ url: gw.url, credentials: creds() });
    const stack = await parseStackFile(STACK, 'stack.yml');
    const out = await deployFunction(c, stackFunction(stack, 'echo-fn'), { pollMs: 10 });
    expect(out.action).toBe('created');
    expect(out.orchestration).toBe('swarm');
    expect(out.namespace).toBeUndefined();
    expect(out.status.availableReplicas).toBe(2);
    expect(out.url).toBe(`${gw.url}/function/echo-fn`);
    const sent = gw.functions.get('/echo-fn')!.deployment;
    expect(sent).toEqual({
      service: 'echo-fn',
      image: 'example/echo:1.0',
      envVars: { exec_timeout: '60s' },
      labels: { 'com.openfaas.scale.min': '2' },
      limits: { memory: '128M', cpu: '500000000' },
      constraints: ['node.platform.os == linux', 'node.platform.arch == aarch64'],
    });
  });

  it('waits until availableReplicas >= 1, reading a missing counter as zero', async () => {
    gw.readyAfterPolls = 3;
    const c = new GatewayClient({ url: gw.url, credentials: creds() });
    await c.deploy({ service: 'echo-fn', image: 'example/echo:1.0' });
    const seen: number[] = [];
    const st = await waitUntilReady(c, 'echo-fn', { image: 'example/echo:1.0', pollMs: 10, onProgress: (s) => seen.push(s?.availableReplicas ?? -1) });
    expect(st.availableReplicas).toBe(1);
    // Ready once two consecutive polls see the replica.
    expect(seen).toEqual([0, 0, 1, 1]);
  });

  it('does not take a replica seen once (a task that dies at start) for a ready function', async () => {
    gw.availability = (poll) => poll % 3 === 0;
    const c = new GatewayClient({ url: gw.url, credentials: creds() });
    await c.deploy({ service: 'echo-fn', image: 'example/echo:1.0' });
    const err = await waitUntilReady(c, 'echo-fn', { image: 'example/echo:1.0', pollMs: 20, timeoutMs: 400 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FunctionNotReadyError);
  });

  it('fails with the replica count when a function never becomes ready', async () => {
    gw.readyAfterPolls = 'never';
    const c = new GatewayClient({ url: gw.url, credentials: creds() });
    await c.deploy({ service: 'echo-fn', image: 'example/echo:1.0' });
    const err = await waitUntilReady(c, 'echo-fn', { image: 'example/echo:1.0', pollMs: 20, timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FunctionNotReadyError);
    expect((err as Error).message).toMatch(/echo-fn did not become ready within 0 s \(0 of 1 replicas available\)/);
    expect((err as FunctionNotReadyError).hint).toMatch(/docker service ps echo-fn --no-trunc/);
  });

  it('lists, scales and removes functions; removing a missing one is a clear error', async () => {
    const c = new GatewayClient({ url: gw.url, credentials: creds() });
    await c.deploy({ service: 'a-fn', image: 'example/a:1' });
    await c.deploy({ service: 'b-fn', image: 'example/b:1', labels: { 'com.openfaas.scale.min': '3' } });
    const list = await c.listFunctions();
    expect(list.map((f) => [f.name, f.image, f.replicas, f.availableReplicas, f.invocationCount])).toEqual([
      ['a-fn', 'example/a:1', 1, 0, 0],
      ['b-fn', 'example/b:1', 3, 0, 0],
    ]);
    await c.scale('a-fn', 2);
    expect(gw.functions.get('/a-fn')?.replicas).toBe(2);
    await c.remove('a-fn');
    expect(JSON.parse(gw.requests.at(-1)!.body.toString())).toEqual({ functionName: 'a-fn' });
    expect((await c.listFunctions()).map((f) => f.name)).toEqual(['b-fn']);
    const err = await c.remove('a-fn').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FunctionNotFoundError);
    expect((err as Error).message).toBe(`there is no function "a-fn" on ${gw.url}`);
    expect(await c.getFunction('a-fn')).toBeUndefined();
  });

  it('invokes with the body and content type; a missing function is a clear error', async () => {
    const c = new GatewayClient({ url: gw.url, credentials: creds() });
    await c.deploy({ service: 'echo-fn', image: 'example/echo:1.0' });
    gw.functions.get('/echo-fn')!.polls = 5;
    const img = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
    const res = await c.invoke('echo-fn', img, { contentType: 'image/jpeg' });
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body.toString());
    expect(seen).toMatchObject({ function: 'echo-fn', method: 'POST', contentType: 'image/jpeg', bytes: 7 });
    const health = await c.invoke('echo-fn', undefined, { path: '/_/health' });
    expect(JSON.parse(health.body.toString())).toMatchObject({ method: 'GET', path: '/_/health' });
    const err = await c.invoke('nope', Buffer.from('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FunctionNotFoundError);
    expect((err as Error).message).toContain('has no function "nope": Cannot find service: nope.');
  });

  it('streams NDJSON logs, lines split across chunks, with tail and follow sent as query parameters', async () => {
    const c = new GatewayClient({ url: gw.url, credentials: creds() });
    await c.deploy({ service: 'echo-fn', image: 'example/echo:1.0' });
    gw.functions.get('/echo-fn')!.logs.push(
      { text: 'model loaded in 812 ms', instance: 'echo-fn.1.abc', timestamp: '2020-12-01T10:00:01Z' },
      { text: 'POST / 200 34 ms', instance: 'echo-fn.1.abc', timestamp: '2020-12-01T10:00:02Z' },
      { text: 'POST / 200 31 ms', instance: 'echo-fn.2.def', timestamp: '2020-12-01T10:00:03Z' },
    );
    const lines = [];
    for await (const l of c.logs({ name: 'echo-fn', tail: 2 })) lines.push(l);
    expect(lines.map((l) => `${l.instance} ${l.text}`)).toEqual(['echo-fn.1.abc POST / 200 34 ms', 'echo-fn.2.def POST / 200 31 ms']);
    expect(gw.requests.at(-1)!.query).toEqual({ name: 'echo-fn', follow: 'false', tail: '2' });
    const err = await (async () => {
      for await (const _ of c.logs({ name: 'nope' })) void _;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FunctionNotFoundError);
  });

  it('says "wants credentials" on 401 without saved credentials, and "refused" with wrong ones, never echoing the password', async () => {
    const none = new GatewayClient({ url: gw.url });
    const e1 = await none.listFunctions().catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(GatewayUnauthorizedError);
    expect((e1 as Error).message).toBe(`the gateway at ${gw.url} wants credentials (401 Unauthorized on GET /system/functions) and none are saved for it`);
    const wrong = new GatewayClient({ url: gw.url, credentials: { username: 'admin', password: 'not-the-Pa55word' } });
    const e2 = await wrong.deploy({ service: 'x', image: 'y' }).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(GatewayUnauthorizedError);
    expect((e2 as Error).message).toMatch(/refused the saved credentials \(401 Unauthorized on PUT \/system\/functions\)/);
    expect(`${(e2 as GatewayError).message} ${(e2 as GatewayError).hint}`).not.toContain('not-the-Pa55word');
    // The healthz endpoint is open, as on a real gateway.
    expect(await none.healthy()).toBe(true);
  });

  it('reports other gateway errors with their status and the provider\'s words', async () => {
    const c = new GatewayClient({ url: gw.url, credentials: creds() });
    const err = await c.deploy({ service: 'echo-fn', image: 'example/echo:1.0', secrets: ['api-key'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).status).toBe(400);
    expect((err as Error).message).toBe(
      `the gateway at ${gw.url} answered 400 Bad Request to POST /system/functions: Deployment error: secret not found: api-key; possible choices:\n[]`,
    );
    // A deployment the gateway's schema refuses is refused here, before anything is sent.
    await expect(c.deploy({ service: '', image: 'y' })).rejects.toThrow(/"service"/);
  });
});

describe('gateway client errors without a gateway', () => {
  it('names the URL and the reason when nothing listens (connection refused)', async () => {
    const port = await closedPort();
    const c = new GatewayClient({ url: `127.0.0.1:${port}` });
    const err = await c.listFunctions().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayUnreachableError);
    expect((err as Error).message).toBe(`cannot reach the OpenFaaS gateway at http://127.0.0.1:${port} (connection refused) for GET /system/functions`);
    expect((err as GatewayError).hint).toMatch(/OPENFAAS_URL/);
  });

  it('names an unknown host', async () => {
    const c = new GatewayClient({ url: 'http://no-such-host.invalid:8080' });
    const err = await c.info().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayUnreachableError);
    expect((err as Error).message).toMatch(/\((unknown host name|EAI_FAIL|ENOTFOUND)\)/);
  });

  it('times out on a gateway that accepts connections but never answers', async () => {
    const srv = createServer(() => {});
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    try {
      const c = new GatewayClient({ url: `http://127.0.0.1:${port}`, requestTimeoutMs: 300 });
      const err = await c.info().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GatewayUnreachableError);
      expect((err as Error).message).toMatch(/\(no answer within 0 s\)/);
    } finally {
      srv.close();
    }
  });

  it('times out on a gateway that sends its headers and then stalls, however often memory is collected meanwhile', async () => {
    const srv = createHttpServer((_q, s) => {
      s.writeHead(200, { 'content-type': 'application/json' });
      s.write('{"provider":');
    });
    const url = await listen(srv);
    const collecting = setInterval(collectGarbage, 50);
    try {
      const c = new GatewayClient({ url, requestTimeoutMs: 300 });
      const started = Date.now();
      const err = await Promise.race([c.info().catch((e: unknown) => e), new Promise((r) => setTimeout(() => r('still waiting after 5 s'), 5000))]);
      expect(err).toBeInstanceOf(GatewayUnreachableError);
      expect((err as Error).message).toBe(`the gateway at ${url} began answering GET /system/info but did not finish within 0 s`);
      expect((err as GatewayError).hint).toMatch(/^the gateway, or a proxy in front of it, dropped the answer: run the command again/);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      clearInterval(collecting);
      srv.closeAllConnections();
      srv.close();
    }
  });

  it('says the connection broke off when a gateway closes it in the middle of an answer', async () => {
    const srv = createHttpServer((_q, s) => {
      s.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      s.write('[{"name":"echo-fn",');
      setTimeout(() => s.socket?.destroy(), 20);
    });
    const url = await listen(srv);
    try {
      const err = await new GatewayClient({ url }).listFunctions().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GatewayUnreachableError);
      expect((err as Error).message).toBe(`the gateway at ${url} began answering GET /system/functions but the connection broke off (other side closed)`);
    } finally {
      srv.close();
    }
  });

  it('ends a log stream quietly when interrupted before the gateway answered (Ctrl-C)', async () => {
    const srv = createHttpServer(() => {});
    const url = await listen(srv);
    try {
      const stop = new AbortController();
      setTimeout(() => stop.abort(), 100);
      const lines = [];
      for await (const l of new GatewayClient({ url }).logs({ name: 'echo-fn', follow: true, signal: stop.signal })) lines.push(l);
      expect(lines).toEqual([]);
    } finally {
      srv.closeAllConnections();
      srv.close();
    }
  });

  it('refuses credentials in the URL (they would land in argv and logs)', () => {
    expect(() => normalizeGatewayUrl('http://admin:secret@pi1:8080')).toThrow(/must not contain a user name or password/);
    expect(normalizeGatewayUrl('PI1:8080/')).toBe('http://pi1:8080');
  });

  it('answers in a form pifaas understands or says it is not a gateway', async () => {
    const srv = (await import('node:http')).createServer((_q, s) => s.writeHead(200, { 'content-type': 'text/html' }).end('<html>router login</html>'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const c = new GatewayClient({ url: `http://127.0.0.1:${(srv.address() as { port: number }).port}` });
      const err = await c.info().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as Error).message).toMatch(/answered GET \/system\/info with something that is not JSON: <html>router login/);
      expect((err as GatewayError).hint).toBe('is this URL an OpenFaaS gateway?');
    } finally {
      srv.close();
    }
  });
});

describe('faas-netes (OpenFaaS on Kubernetes): namespaces', () => {
  beforeEach(async () => {
    gw = new FakeGateway({ provider: 'faas-netes', namespaces: ['openfaas-fn', 'staging'], readyAfterPolls: 1 });
    await gw.start();
  });
  afterEach(async () => gw.stop());

  it('deploys into openfaas-fn by default, with Kubernetes node selectors and quantities', async () => {
    const c = new GatewayClient({ url: gw.url, credentials: creds() });
    const stack = await parseStackFile(STACK, 'stack.yml');
    const out = await deployFunction(c, stackFunction(stack, 'echo-fn'), { pollMs: 10 });
    expect(out.orchestration).toBe('kubernetes');
    expect(out.namespace).toBe('openfaas-fn');
    expect(out.url).toBe(`${gw.url}/function/echo-fn.openfaas-fn`);
    const sent = gw.functions.get('openfaas-fn/echo-fn')!.deployment;
    expect(sent.namespace).toBe('openfaas-fn');
    expect(sent.limits).toEqual({ memory: '128M', cpu: '500m' });
    expect(sent.constraints).toEqual(['kubernetes.io/os=linux', 'kubernetes.io/arch=arm64']);
    const polled = gw.requests.filter((r) => r.path === '/system/function/echo-fn');
    expect(polled.every((r) => r.query.namespace === 'openfaas-fn')).toBe(true);
    // Invocation goes to name.namespace.
    const res = await c.invoke('echo-fn', Buffer.from('x'), { namespace: out.namespace });
    expect(JSON.parse(res.body.toString())).toMatchObject({ function: 'echo-fn', namespace: 'openfaas-fn' });
  });

  it('honours a namespace from the flag (over stack.yml) and refuses one the provider does not have', async () => {
    const c = new GatewayClient({ url: gw.url, credentials: creds() });
    const stack = await parseStackFile(STACK.replace('image: example/echo:1.0', 'image: example/echo:1.0\n    namespace: openfaas-fn'), 'stack.yml');
    const out = await deployFunction(c, stackFunction(stack, 'echo-fn'), { namespace: 'staging', pollMs: 10 });
    expect(out.namespace).toBe('staging');
    expect(gw.functions.has('staging/echo-fn')).toBe(true);
    expect((await c.listFunctions('staging')).map((f) => [f.name, f.namespace])).toEqual([['echo-fn', 'staging']]);
    expect(gw.requests.at(-1)!.query).toEqual({ namespace: 'staging' });
    await c.remove('echo-fn', 'staging');
    expect(gw.requests.at(-1)!.query).toEqual({ namespace: 'staging' });
    const err = await resolveTarget(c, { flag: 'prod' }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`faas-netes at ${gw.url} has no function namespace "prod"`);
    expect((err as GatewayError).hint).toMatch(/it has: openfaas-fn, staging/);
  });
});
