// Why: OpenFaaS's own Go services (gateway, faas-swarm, faas-netes) cannot run here, so the gateway
// client and the commands are tested against this HTTP server, which answers as OpenFaaS's published
// OpenAPI spec (openfaas/faas api-docs/spec.openapi.yml) and faas-provider's handlers do: the status
// codes per operation, basic auth on /system/* only, FunctionStatus bodies with omitempty counters,
// NDJSON log streams, and faas-netes' namespaces (query parameter, `namespace` field, name.namespace
// invocation) when it plays faas-netes. It records every request so tests can check what was sent.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeFunction {
  name: string;
  namespace: string;
  deployment: Record<string, unknown>;
  replicas: number;
  /** GET /system/function polls seen since the last create/update. */
  polls: number;
  invocations: number;
  logs: { text: string; instance: string; timestamp: string }[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization?: string;
  body: Buffer;
}

/**
 * Where functions really live. Without one, the fake keeps them in memory; with the swarm backend
 * (swarm-provider.ts) it does what faas-swarm does on a real Docker swarm.
 */
export interface ProviderBackend {
  deploy(req: Record<string, unknown>, update: boolean): Promise<void>;
  remove(name: string): Promise<void>;
  /** Desired and running replicas, as faas-swarm's replica reader counts them. */
  replicas(name: string): Promise<{ replicas: number; available: number }>;
}

export interface FakeGatewayOptions {
  backend?: ProviderBackend;
  provider?: 'faas-swarm' | 'faas-netes';
  username?: string;
  password?: string;
  /** A function reports an available replica after this many status polls; 'never' keeps it at 0. */
  readyAfterPolls?: number | 'never';
  /** faas-netes' function namespaces. */
  namespaces?: string[];
}

export class FakeGateway {
  readonly requests: RecordedRequest[] = [];
  readonly functions = new Map<string, FakeFunction>();
  private server?: Server;
  url = '';
  readyAfterPolls: number | 'never';
  readonly provider: 'faas-swarm' | 'faas-netes';
  readonly username: string;
  readonly password: string;
  readonly namespaces: string[];
  readonly backend?: ProviderBackend;
  /** Overrides readyAfterPolls: whether the n-th status poll sees an available replica. */
  availability?: (poll: number) => boolean;
  /** Swarm secrets the provider knows. */
  secrets: string[] = [];

  constructor(opts: FakeGatewayOptions = {}) {
    this.provider = opts.provider ?? 'faas-swarm';
    this.username = opts.username ?? 'admin';
    this.password = opts.password ?? 'sw0rdfish-Pa55';
    this.readyAfterPolls = opts.readyAfterPolls ?? 2;
    this.namespaces = opts.namespaces ?? ['openfaas-fn'];
    this.backend = opts.backend;
  }

  get netes(): boolean {
    return this.provider === 'faas-netes';
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          this.handle(req, res, Buffer.concat(chunks)).catch((e: unknown) => res.writeHead(500).end(`Deployment error: ${(e as Error).message}`));
        } catch (e) {
          res.writeHead(500).end(String(e));
        }
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Requests to /system/* and /function/*, as "METHOD /path". */
  calls(): string[] {
    return this.requests.filter((r) => r.path !== '/healthz').map((r) => `${r.method} ${r.path}`);
  }

  private key(name: string, ns: string): string {
    return `${ns}/${name}`;
  }

  /** Namespace a request addresses: faas-swarm has none, faas-netes defaults to openfaas-fn. */
  private ns(requested: string | undefined): string | undefined {
    if (!this.netes) return '';
    const ns = requested || 'openfaas-fn';
    return this.namespaces.includes(ns) ? ns : undefined;
  }

  private async status(f: FakeFunction): Promise<Record<string, unknown>> {
    const d = f.deployment;
    const ready = this.availability ? this.availability(f.polls) : this.readyAfterPolls !== 'never' && f.polls >= this.readyAfterPolls;
    let available = ready ? f.replicas : 0;
    if (this.backend) {
      const r = await this.backend.replicas(f.name);
      f.replicas = r.replicas;
      available = r.available;
    }
    // faas-provider's FunctionStatus: counters are omitempty (absent when zero).
    return {
      name: f.name,
      image: d.image,
      ...(this.netes ? { namespace: f.namespace } : {}),
      ...(d.envProcess ? { envProcess: d.envProcess } : {}),
      ...(d.envVars ? { envVars: d.envVars } : {}),
      ...(d.constraints ? { constraints: d.constraints } : {}),
      labels: d.labels ?? null,
      annotations: d.annotations ?? null,
      ...(d.limits ? { limits: d.limits } : {}),
      ...(d.requests ? { requests: d.requests } : {}),
      ...(f.invocations ? { invocationCount: f.invocations } : {}),
      ...(f.replicas ? { replicas: f.replicas } : {}),
      ...(available ? { availableReplicas: available } : {}),
      createdAt: '2020-12-01T10:00:00Z',
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(u.searchParams);
    this.requests.push({ method: req.method ?? '', path: u.pathname, query, authorization: req.headers.authorization, body });
    const json = (code: number, v: unknown): void => void res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(v));
    const text = (code: number, t: string): void => void res.writeHead(code, { 'content-type': 'text/plain' }).end(t);

    if (u.pathname === '/healthz') return text(200, 'OK');

    if (u.pathname.startsWith('/system/')) {
      const expected = `Basic ${Buffer.from(`${this.username}:${this.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="Restricted"' }).end('Unauthorized\n');
        return;
      }
      return this.system(req.method ?? 'GET', u, query, body, json, text, res);
    }

    const m = /^\/function\/([^/]+)(\/.*)?$/.exec(u.pathname);
    if (m) {
      let name = m[1]!;
      let ns: string | undefined = '';
      if (this.netes) {
        const dot = name.indexOf('.');
        ns = this.ns(dot >= 0 ? name.slice(dot + 1) : undefined);
        if (dot >= 0) name = name.slice(0, dot);
      }
      const f = ns === undefined ? undefined : this.functions.get(this.key(name, ns));
      if (!f) return text(404, `Cannot find service: ${name}.`);
      if (this.readyAfterPolls === 'never') return text(502, 'Bad Gateway');
      f.invocations++;
      // The "function" behind the gateway: reports what it received.
      return json(200, {
        function: name,
        namespace: f.namespace,
        method: req.method,
        path: m[2] ?? '/',
        contentType: req.headers['content-type'] ?? null,
        bytes: body.length,
        sha256: createHash('sha256').update(body).digest('hex'),
        sawAuthorization: req.headers.authorization !== undefined,
      });
    }
    return text(404, '404 page not found');
  }

  private async system(
    method: string,
    u: URL,
    query: Record<string, string>,
    body: Buffer,
    json: (c: number, v: unknown) => void,
    text: (c: number, t: string) => void,
    res: ServerResponse,
  ): Promise<void> {
    const path = u.pathname;
    if (path === '/system/info' && method === 'GET') {
      return json(200, {
        provider: {
          provider: this.provider,
          orchestration: this.netes ? 'kubernetes' : 'swarm',
          version: { sha: 'c7d0fb0b4cd5a1e8a0d8a3e0f4b0e1f2a3b4c5d6', release: this.netes ? '0.12.8' : '0.9.0' },
        },
        version: { sha: '0a1b2c3d', release: '0.18.18' },
        arch: 'x86_64',
      });
    }
    if (path === '/system/namespaces' && method === 'GET') return json(200, this.netes ? this.namespaces : []);

    if (path === '/system/functions') {
      const ns = this.ns(query.namespace);
      if (ns === undefined) return text(400, `namespace ${query.namespace} is not allowed`);
      if (method === 'GET') {
        return json(200, await Promise.all([...this.functions.values()].filter((f) => f.namespace === ns).map((f) => this.status(f))));
      }
      let req: Record<string, unknown>;
      try {
        req = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        return text(400, 'Bad Request');
      }
      if (method === 'DELETE') {
        if (typeof req.functionName !== 'string' || !req.functionName) return text(400, 'functionName is required');
        const key = this.key(req.functionName, ns);
        if (!this.functions.has(key)) return text(404, `Unable to find function: ${req.functionName}`);
        await this.backend?.remove(req.functionName);
        this.functions.delete(key);
        return text(200, '');
      }
      if (typeof req.service !== 'string' || !req.service || typeof req.image !== 'string' || !req.image) {
        return text(400, 'service and image are required');
      }
      // faas-swarm looks every secret up before creating the service.
      const missing = ((req.secrets ?? []) as string[]).find((x) => !this.secrets.includes(x));
      const secretError = () => text(400, `Deployment error: secret not found: ${missing}; possible choices:\n[]`);
      const fns = this.ns(typeof req.namespace === 'string' ? req.namespace : undefined);
      if (fns === undefined) return text(400, `namespace ${String(req.namespace)} is not allowed`);
      const key = this.key(req.service, fns);
      const labels = (req.labels ?? {}) as Record<string, string>;
      const replicas = Number(labels['com.openfaas.scale.min'] ?? 1);
      if (method === 'POST') {
        if (this.functions.has(key)) return text(400, `Deployment error: function ${req.service} already exists`);
        if (missing) return secretError();
        await this.backend?.deploy(req, false);
        this.functions.set(key, { name: req.service, namespace: fns, deployment: req, replicas, polls: 0, invocations: 0, logs: [] });
        return text(202, '');
      }
      if (method === 'PUT') {
        const f = this.functions.get(key);
        if (!f) return text(404, `Unable to find function: ${req.service}`);
        if (missing) return secretError();
        await this.backend?.deploy(req, true);
        Object.assign(f, { deployment: req, replicas, polls: 0 });
        return text(200, '');
      }
      return text(405, 'Method Not Allowed');
    }

    const fnm = /^\/system\/function\/([^/]+)$/.exec(path);
    if (fnm && method === 'GET') {
      const ns = this.ns(query.namespace);
      const f = ns === undefined ? undefined : this.functions.get(this.key(fnm[1]!, ns));
      if (!f) return text(404, 'Not Found');
      f.polls++;
      return json(200, await this.status(f));
    }

    const scm = /^\/system\/scale-function\/([^/]+)$/.exec(path);
    if (scm && method === 'POST') {
      const ns = this.ns(query.namespace);
      const f = ns === undefined ? undefined : this.functions.get(this.key(scm[1]!, ns));
      if (!f) return text(404, 'Not Found');
      f.replicas = (JSON.parse(body.toString('utf8')) as { replicas: number }).replicas;
      return text(202, '');
    }

    if (path === '/system/logs' && method === 'GET') {
      const ns = this.ns(query.namespace);
      const f = ns === undefined || !query.name ? undefined : this.functions.get(this.key(query.name, ns));
      if (!f) return text(404, 'Not Found');
      const tail = Number(query.tail ?? 0);
      const lines = (tail > 0 ? f.logs.slice(-tail) : f.logs).map(
        (l) => `${JSON.stringify({ name: f.name, namespace: f.namespace, instance: l.instance, timestamp: l.timestamp, text: l.text })}\n`,
      );
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      // Deliver the stream in awkward pieces (lines split across chunks), as a real stream may.
      const all = lines.join('');
      const pieces = [all.slice(0, 7), all.slice(7, Math.floor(all.length / 2)), all.slice(Math.floor(all.length / 2))];
      let i = 0;
      const next = () => {
        if (i < pieces.length) {
          res.write(pieces[i++]);
          setTimeout(next, 5);
        } else res.end();
      };
      return next();
    }
    return text(404, 'Not Found');
  }
}
