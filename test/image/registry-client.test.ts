// The registry client's auth against a test server that follows the Docker Registry token
// authentication spec (401 + WWW-Authenticate: Bearer realm/service/scope, then a token from the
// realm with the user's Basic credentials), as Docker Hub and most registries do; Docker Hub itself
// cannot be reached here. Credentials come from a Docker CLI config.json, as `docker login` writes it.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegistryCredentials } from '../../src/image/docker-credentials.js';
import { MEDIA, RegistryClient, sha256Digest } from '../../src/image/registry-client.js';

let server: Server;
let registry: string;
let configDir: string;
const seen: { method: string; url: string; auth?: string }[] = [];
const manifests = new Map<string, { type: string; body: Buffer }>();
const TOKEN = 'tok-123';

function body(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization });
    if (url.pathname === '/token') {
      const expected = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
      if (req.headers.authorization !== expected || url.searchParams.get('service') !== 'test-registry') {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: TOKEN, scope: url.searchParams.get('scope') }));
      return;
    }
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      const scope = url.pathname.startsWith('/v2/team/') ? ',scope="repository:team/app:pull"' : '';
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${registry}/token",service="test-registry"${scope}` }).end();
      return;
    }
    const m = /^\/v2\/(.+)\/manifests\/(.+)$/.exec(url.pathname);
    if (m && req.method === 'PUT') {
      const data = await body(req);
      const digest = sha256Digest(data);
      manifests.set(`${m[1]}:${m[2]}`, { type: req.headers['content-type'] ?? '', body: data });
      manifests.set(`${m[1]}:${digest}`, { type: req.headers['content-type'] ?? '', body: data });
      res.writeHead(201, { 'docker-content-digest': digest }).end();
      return;
    }
    if (m && req.method === 'GET') {
      const found = manifests.get(`${m[1]}:${m[2]}`);
      if (!found) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': found.type, 'docker-content-digest': sha256Digest(found.body) }).end(found.body);
      return;
    }
    res.writeHead(url.pathname === '/v2/' ? 200 : 404).end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  configDir = await mkdtemp(path.join(tmpdir(), 'pifaas-t5-docker-config-'));
  await writeFile(path.join(configDir, 'config.json'), JSON.stringify({ auths: { [registry]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
});

afterAll(async () => {
  server.close();
  await rm(configDir, { recursive: true, force: true });
});

describe('RegistryClient', () => {
  it('logs in with the saved docker login credentials through the Bearer token flow and writes a manifest list', async () => {
    const old = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = configDir;
    try {
      expect(await loadRegistryCredentials(registry)).toEqual({ username: 'alice', password: 's3cret' });
      const client = new RegistryClient(registry);
      const platforms = [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm', variant: 'v7' },
      ];
      const entries = platforms.map((platform, i) => ({ digest: `sha256:${String(i).repeat(64)}`, size: 1000 + i, mediaType: MEDIA.dockerManifest, platform }));
      const { digest } = await client.putManifestList('team/app', '1.0', entries);
      const got = await client.getManifest('team/app', '1.0');
      expect(got).toMatchObject({ mediaType: MEDIA.dockerList, digest });
      expect(JSON.parse(got?.body.toString() ?? '{}')).toEqual({ schemaVersion: 2, mediaType: MEDIA.dockerList, manifests: entries });
      // The token was asked for with push rights on that repository, and reused afterwards.
      const tokenCalls = seen.filter((s) => s.url.startsWith('/token'));
      expect(tokenCalls).toHaveLength(1);
      expect(decodeURIComponent(tokenCalls[0]?.url ?? '')).toContain('scope=repository:team/app:pull,push');
      expect(await client.getManifest('team/app', 'missing')).toBeUndefined();
    } finally {
      if (old === undefined) delete process.env.DOCKER_CONFIG;
      else process.env.DOCKER_CONFIG = old;
    }
  });

  it('says to log in when there are no credentials, without leaking any secret', async () => {
    const client = new RegistryClient(registry, { credentials: null });
    const err = await client.putManifest('team/app', '2.0', MEDIA.dockerList, Buffer.from('{}')).catch((e: unknown) => e);
    expect(err).toMatchObject({ message: expect.stringMatching(new RegExp(`${registry} refused a token for team/app \\(HTTP 401\\)`)), hint: `log in first: docker login ${registry}` });
  });

  it('explains an unreachable registry', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const client = new RegistryClient(`127.0.0.1:${port}`, { credentials: null, timeoutSeconds: 5 });
    await expect(client.ping()).rejects.toMatchObject({
      message: `cannot reach the registry 127.0.0.1:${port} (ECONNREFUSED)`,
      hint: 'check the address and port, and that the registry is running',
    });
  });
});
