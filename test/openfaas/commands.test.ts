import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type RequestListener } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveCredentials } from '../../src/openfaas/credentials.js';
import { runCli } from './cli-run.js';
import { FakeGateway } from './fake-gateway.js';

let dir: string;
let gw: FakeGateway;
let env: NodeJS.ProcessEnv;
const photo = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(3000, 7)]);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 't4-cli-'));
  gw = new FakeGateway({ provider: 'faas-swarm', readyAfterPolls: 2 });
  await gw.start();
  env = { OPENFAAS_URL: gw.url, OPENFAAS_CONFIG: path.join(dir, 'openfaas') };
  await saveCredentials(gw.url, { username: gw.username, password: gw.password }, env);
  await writeFile(path.join(dir, 'photo.jpg'), photo);
});
afterAll(async () => {
  await gw.stop();
  await rm(dir, { recursive: true, force: true });
});


/** A server standing where the gateway should be; with swarmInfo, GET /system/info answers as faas-swarm's gateway does. */
async function serveAtGateway(handle: RequestListener, opts: { swarmInfo?: boolean } = {}): Promise<{ url: string; close: () => void }> {
  const srv = createHttpServer((req, res) => {
    if (opts.swarmInfo && req.url === '/system/info') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ provider: { provider: 'faas-swarm', orchestration: 'swarm' } }));
      return;
    }
    handle(req, res);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, close: () => srv.close() };
}

/** One line of faas-digits' NDJSON log stream. */
const logLine = (text: string) => `${JSON.stringify({ name: 'faas-digits', namespace: '', instance: 'faas-digits.1.x1', timestamp: '2020-12-01T10:00:01Z', text })}\n`;
describe('pifaas deploy / ls / invoke / logs / rm against a swarm gateway', () => {
  it('deploys faas-digits from the project\'s stack.yml, waits for a replica and shows the first answer', async () => {
    const r = await runCli(['deploy', 'faas-digits', '--data', path.join(dir, 'photo.jpg'), '--content-type', 'image/jpeg'], { env });
    expect(r.stderr).not.toContain(gw.password);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^FUNCTION\s+ACTION\s+IMAGE\s+READY\s+URL$/);
    expect(lines[1]).toMatch(new RegExp(`^faas-digits\\s+created\\s+pifaas/faas-digits:\\S+\\s+1/1\\s+${gw.url}/function/faas-digits$`));
    const sha = createHash('sha256').update(photo).digest('hex');
    expect(lines[2]).toMatch(new RegExp(`^faas-digits answered 200: .*"contentType":"image/jpeg","bytes":3004,"sha256":"${sha}"`));
    const sent = gw.functions.get('/faas-digits')!.deployment;
    expect(sent).toMatchObject({
      service: 'faas-digits',
      envVars: { PIFAAS_FUNCTION: 'faas-digits', exec_timeout: '60s', read_timeout: '65s', write_timeout: '65s' },
      labels: { 'com.openfaas.scale.min': '1', 'com.openfaas.scale.max': '4' },
      limits: { memory: '128M', cpu: '1000000000' },
      constraints: ['node.platform.os == linux'],
    });
  });

  it('updates on the second deploy and calls /_/health when no --data is given (JSON output)', async () => {
    const r = await runCli(['deploy', 'faas-digits', '--json'], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out.gateway).toBe(gw.url);
    expect(out.functions[0]).toMatchObject({ name: 'faas-digits', action: 'updated', orchestration: 'swarm', answer: { status: 200, body: { method: 'GET', path: '/_/health' } } });
  });

  it('lists the functions as a table and as JSON', async () => {
    const r = await runCli(['ls'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^FUNCTION\s+INVOCATIONS\s+READY\s+IMAGE\nfaas-digits\s+2\s+1\/1\s+pifaas\/faas-digits:\S+\n$/);
    const j = await runCli(['ls', '--json'], { env });
    expect(JSON.parse(j.stdout)).toMatchObject({ provider: 'faas-swarm', functions: [{ name: 'faas-digits', invocations: 2, replicas: 1, availableReplicas: 1 }] });
  });

  it('finds the gateway of an inventory that names its manager by an SSH config alias (-i): the alias\'s HostName', async () => {
    const home = path.join(dir, 'alias-home');
    await mkdir(path.join(home, '.ssh'), { recursive: true });
    await writeFile(path.join(home, '.ssh', 'config'), 'Host gw-alias\n  HostName 127.0.0.1\n');
    const inventory = path.join(dir, 'alias-inventory.yaml');
    const port = new URL(gw.url).port;
    await writeFile(inventory, `all:\n  vars:\n    pifaas_openfaas_gateway_port: ${port}\n  children:\n    managers:\n      hosts:\n        gw-alias: {}\n`);
    const r = await runCli(['ls', '-i', inventory, '--json'], { env: { OPENFAAS_CONFIG: env.OPENFAAS_CONFIG, HOME: home } });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ gateway: `http://127.0.0.1:${port}`, provider: 'faas-swarm' });
  });

  it('invokes with stdin and writes the answer to stdout byte for byte; a missing function exits 1', async () => {
    const r = await runCli(['invoke', 'faas-digits', '--content-type', 'image/jpeg'], { env, stdin: photo });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ function: 'faas-digits', bytes: photo.length, contentType: 'image/jpeg', sawAuthorization: false });
    const missing = await runCli(['invoke', 'faas-nope'], { env, stdin: 'x' });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      `error: the gateway at ${gw.url} has no function "faas-nope": Cannot find service: faas-nope.\nhint: deploy it first with \`pifaas deploy faas-nope\`, or list what is there with \`pifaas ls\`\n`,
    );
  });

  it('refuses a standard input larger than 64 MiB with a clear error, without sending any of it', async () => {
    const before = gw.requests.length;
    const r = await runCli(['invoke', 'faas-digits'], { env, stdin: Buffer.alloc(64 * 1024 * 1024 + 1, 1) });
    expect(r.stderr).toBe(
      'error: standard input is larger than 64 MiB, the most pifaas invoke sends\n' +
        'hint: pipe in a smaller file (pifaas functions take up to 10 MiB, PIFAAS_MAX_BODY_BYTES), or send a large body straight to the gateway: curl --data-binary @FILE GATEWAY/function/faas-digits\n',
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(gw.requests.slice(before)).toEqual([]);
  });

  it('prints log lines with time and instance, and NDJSON with --json', async () => {
    gw.functions.get('/faas-digits')!.logs.push(
      { text: 'engine onnxruntime-node, model mnist-8 loaded', instance: 'faas-digits.1.x1', timestamp: '2020-12-01T10:00:01Z' },
      { text: 'POST / 200 4 ms', instance: 'faas-digits.1.x1', timestamp: '2020-12-01T10:00:02Z' },
    );
    const r = await runCli(['logs', 'faas-digits'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('2020-12-01T10:00:01Z faas-digits.1.x1 engine onnxruntime-node, model mnist-8 loaded\n2020-12-01T10:00:02Z faas-digits.1.x1 POST / 200 4 ms\n');
    const j = await runCli(['logs', 'faas-digits', '--tail', '1', '--json'], { env });
    expect(j.stdout.trim().split('\n').map((l) => JSON.parse(l).text)).toEqual(['POST / 200 4 ms']);
  });

  it('removes a function, and says so when it is already gone', async () => {
    const r = await runCli(['rm', 'faas-digits'], { env });
    expect(r.stdout).toBe('removed faas-digits\n');
    const again = await runCli(['rm', 'faas-digits'], { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('faas-digits was not deployed (nothing to remove)\n');
  });

  it('gives up on a function that never gets a replica, with the replica count', async () => {
    gw.readyAfterPolls = 'never';
    try {
      const r = await runCli(['deploy', 'faas-resnet', '--timeout', '2'], { env });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('error: faas-resnet did not become ready within 2 s (0 of 1 replicas available)');
      expect(r.stderr).toContain('hint: `docker service ps faas-resnet --no-trunc` on a manager shows why');
    } finally {
      gw.readyAfterPolls = 2;
    }
  });
});

describe('gateway and credential errors as the user sees them', () => {
  it('says the gateway is unreachable, naming the URL', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const r = await runCli(['ls'], { env: { ...env, OPENFAAS_URL: `http://127.0.0.1:${port}` } });
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe(`error: cannot reach the OpenFaaS gateway at http://127.0.0.1:${port} (connection refused) for GET /system/info`);
    expect(r.stderr).toMatch(/^hint: check the address and port/m);
  });

  it('names a proxy\'s error page as such instead of printing its HTML and blaming the provider', async () => {
    const page = '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n';
    const { url, close } = await serveAtGateway((_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end(page));
    try {
      const r = await runCli(['ls'], { env: { ...env, OPENFAAS_URL: url } });
      expect(r.stderr).toBe(
        `error: the gateway at ${url} answered 502 Bad Gateway to GET /system/info with a web page ("502 Bad Gateway"), not an answer of OpenFaaS\n` +
          'hint: a proxy or another web server answers at this address: the OpenFaaS gateway behind a proxy is down, or --gateway / OPENFAAS_URL / provider.gateway names something else; check the URL and the gateway task (`docker service ps func_gateway` on a manager)\n',
      );
      expect(r.code).toBe(1);
    } finally {
      close();
    }
  });

  it('says credentials are missing (401) without printing any secret; JSON errors on --json', async () => {
    const other = { ...env, OPENFAAS_CONFIG: path.join(dir, 'empty-config') };
    const r = await runCli(['ls'], { env: other });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: the gateway at ${gw.url} wants credentials (401 Unauthorized on GET /system/info) and none are saved for it`);
    const j = await runCli(['deploy', 'faas-digits', '--json'], { env: other });
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stderr.trim().split('\n').at(-1)!)).toMatchObject({ error: expect.stringContaining('401 Unauthorized'), hint: expect.any(String) });
    expect(r.stderr + j.stderr).not.toContain(gw.password);
  });

  it('prints the password only with `pifaas openfaas password`, and refuses when none is saved', async () => {
    const r = await runCli(['openfaas', 'password'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${gw.password}\n`);
    const j = await runCli(['openfaas', 'password', '--json'], { env });
    expect(JSON.parse(j.stdout)).toEqual({ gateway: gw.url, username: 'admin', password: gw.password });
    const none = await runCli(['openfaas', 'password', '--gateway', 'http://10.94.0.99:8080'], { env });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`error: no credentials are saved for http://10.94.0.99:8080 in ${path.join(dir, 'openfaas', 'config.yml')}`);
    expect((await stat(path.join(dir, 'openfaas', 'config.yml'))).mode & 0o777).toBe(0o600);
    expect(await readFile(path.join(dir, 'openfaas', 'config.yml'), 'utf8')).not.toContain(gw.password);
  });

  it('prints the log lines that came and then says the stream broke off, when the gateway drops it', async () => {
    const { url, close } = await serveAtGateway(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        res.write(logLine('model loaded'));
        setTimeout(() => res.socket?.destroy(), 50);
      },
      { swarmInfo: true },
    );
    try {
      const r = await runCli(['logs', 'faas-digits'], { env: { ...env, OPENFAAS_URL: url } });
      expect(r.stdout).toBe('2020-12-01T10:00:01Z faas-digits.1.x1 model loaded\n');
      expect(r.stderr).toBe(
        `error: the log stream of "faas-digits" from the gateway at ${url} broke off after 1 line (other side closed)\n` +
          'hint: run `pifaas logs faas-digits` again (--since picks up from a time); if it keeps breaking off, the gateway or a proxy in front of it is dropping the connection (`docker service logs func_gateway` on a manager)\n',
      );
      expect(r.code).toBe(1);
    } finally {
      close();
    }
  });

  it('ends `logs --follow` quietly when the reader closes the pipe (`| head -2`)', async () => {
    const { url, close } = await serveAtGateway(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        let n = 0;
        const more = setInterval(() => res.write(logLine(`request ${n++}`)), 10);
        res.on('close', () => clearInterval(more));
      },
      { swarmInfo: true },
    );
    try {
      const r = await runCli(['logs', 'faas-digits', '--follow'], { env: { ...env, OPENFAAS_URL: url }, closeStdoutAfterLines: 2, timeoutMs: 30_000 });
      expect(r.stdout.split('\n').slice(0, 2)).toEqual(['2020-12-01T10:00:01Z faas-digits.1.x1 request 0', '2020-12-01T10:00:01Z faas-digits.1.x1 request 1']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    } finally {
      close();
    }
  });

  it('refuses a stack file with problems, naming file:line:col', async () => {
    await writeFile(path.join(dir, 'bad.yml'), 'provider:\n  name: openfaas\nfunctions:\n  f:\n    image: x:1\n    limits: {memory: huge}\n');
    const r = await runCli(['deploy', '-f', path.join(dir, 'bad.yml')], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path.join(dir, 'bad.yml')}:6:14: functions.f.limits.memory: "huge" is not an amount of memory`);
  });
});

describe('pifaas deploy against OpenFaaS on Kubernetes (faas-netes)', () => {
  let netes: FakeGateway;
  let nenv: NodeJS.ProcessEnv;
  beforeAll(async () => {
    netes = new FakeGateway({ provider: 'faas-netes', namespaces: ['openfaas-fn', 'staging'], readyAfterPolls: 1 });
    await netes.start();
    nenv = { OPENFAAS_URL: netes.url, OPENFAAS_CONFIG: path.join(dir, 'openfaas') };
    await saveCredentials(netes.url, { username: netes.username, password: netes.password }, nenv);
  });
  afterAll(async () => netes.stop());

  it('deploys the same stack.yml unchanged into openfaas-fn, with Kubernetes resources and selectors', async () => {
    const r = await runCli(['deploy', 'faas-resnet', '--json'], { env: nenv });
    expect(r.code).toBe(0);
    const f = JSON.parse(r.stdout).functions[0];
    expect(f).toMatchObject({ namespace: 'openfaas-fn', orchestration: 'kubernetes', url: `${netes.url}/function/faas-resnet.openfaas-fn`, answer: { status: 200 } });
    const sent = netes.functions.get('openfaas-fn/faas-resnet')!.deployment;
    expect(sent).toMatchObject({ namespace: 'openfaas-fn', limits: { memory: '512M', cpu: '2' }, requests: { memory: '256M', cpu: '500m' }, constraints: ['kubernetes.io/os=linux'] });
    const ls = await runCli(['ls', '--namespace', 'staging'], { env: nenv });
    expect(ls.stdout).toBe(`no functions on ${netes.url} in namespace staging (deploy one with \`pifaas deploy faas-resnet\`)\n`);
    const bad = await runCli(['invoke', 'faas-resnet', '-n', 'prod'], { env: nenv, stdin: 'x' });
    expect(bad.stderr).toContain(`error: faas-netes at ${netes.url} has no function namespace "prod"`);
  });
});
