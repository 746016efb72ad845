// Why: everything pifaas does with a running OpenFaaS (deploy, list, remove, invoke, logs) goes
// through the gateway's REST API, on a swarm (faas-swarm) and on Kubernetes (faas-netes) alike. This
// is a small typed client for that API as OpenFaaS's OpenAPI spec describes it (the role faas-cli's
// proxy/ package plays): basic auth on /system/*, never on /function/* (system credentials are not
// the functions' business), every answer checked by a zod schema, every failure turned into an error
// a user can act on.
import { z } from 'zod';
import { UserError } from '../user-error.js';
import {
  functionDeploymentSchema,
  functionListSchema,
  functionStatusSchema,
  gatewayInfoSchema,
  logEntrySchema,
  namespaceListSchema,
  type FunctionDeployment,
  type FunctionStatus,
  type GatewayInfo,
  type LogEntry,
} from './gateway-schemas.js';

export interface GatewayCredentials {
  username: string;
  /** A secret: never printed, logged or put in an error message. */
  password: string;
}

export interface GatewayClientOptions {
  /** Base URL of the gateway, e.g. http://192.168.1.11:8080 (no credentials in it). */
  url: string;
  credentials?: GatewayCredentials;
  /** Time limit of each /system/* call (not of invocations and log streams). Default 30 s. */
  requestTimeoutMs?: number;
}

/** Any failure talking to the gateway; `status` is set when the gateway answered. */
export class GatewayError extends UserError {
  constructor(
    message: string,
    hint: string | undefined,
    readonly status?: number,
    readonly body?: string,
    options?: ErrorOptions,
  ) {
    super(message, hint, 1, options);
  }
}

/** Nothing answered at the gateway's address (refused, no route, unknown host, timed out). */
export class GatewayUnreachableError extends GatewayError {}
/** The gateway answered 401: missing or wrong basic-auth credentials. */
export class GatewayUnauthorizedError extends GatewayError {}
/** The function (or, for PUT, the deployment to update) does not exist. */
export class FunctionNotFoundError extends GatewayError {}

export interface InvokeOptions {
  namespace?: string;
  contentType?: string;
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Extra path after the function name, e.g. "/_/health". */
  path?: string;
  signal?: AbortSignal;
}

export interface InvokeResult {
  status: number;
  contentType: string | null;
  body: Buffer;
}

export interface LogsOptions {
  name: string;
  namespace?: string;
  /** At most this many recent lines (0 or undefined: all). */
  tail?: number;
  follow?: boolean;
  /** Only lines after this time. */
  since?: Date;
  signal?: AbortSignal;
}

/** Turns a base URL into the canonical form faas-cli keys credentials by (lower case, no trailing slash). */
export function normalizeGatewayUrl(raw: string): string {
  let s = raw.trim().replace(/\/+$/, '');
  if (!/^https?:\/\//i.test(s)) s = `http://${s}`;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new UserError(`"${raw}" is not a gateway URL`, 'give it as http://HOST:8080 (the manager\'s address and the gateway port)');
  }
  if (u.username || u.password) {
    throw new UserError(
      'the gateway URL must not contain a user name or password',
      'pifaas reads credentials from ~/.openfaas/config.yml (written by `pifaas openfaas install` or `faas-cli login`); give the URL as http://HOST:8080',
    );
  }
  return s.toLowerCase();
}

export class GatewayClient {
  readonly url: string;
  private readonly credentials?: GatewayCredentials;
  private readonly requestTimeoutMs: number;

  constructor(opts: GatewayClientOptions) {
    this.url = normalizeGatewayUrl(opts.url);
    this.credentials = opts.credentials;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
  }

  get hasCredentials(): boolean {
    return this.credentials !== undefined;
  }

  /** GET /healthz: true when the gateway says it is healthy (200), false on 500 / 503. */
  async healthy(): Promise<boolean> {
    const answer = await this.exchange('GET', '/healthz', { auth: false });
    return answer.ok;
  }

  /** GET /system/info: gateway version and provider (faas-swarm / faas-netes) and its orchestration. */
  async info(): Promise<GatewayInfo> {
    const res = await this.system('GET', '/system/info');
    return this.parse(res, gatewayInfoSchema, 'GET /system/info');
  }

  /** GET /system/functions (in one namespace on faas-netes). */
  async listFunctions(namespace?: string): Promise<FunctionStatus[]> {
    const res = await this.system('GET', withQuery('/system/functions', { namespace }));
    return this.parse(res, functionListSchema, 'GET /system/functions');
  }

  /** GET /system/function/{name}: the function's status, or undefined when there is no such function. */
  async getFunction(name: string, namespace?: string): Promise<FunctionStatus | undefined> {
    const res = await this.system('GET', withQuery(`/system/function/${encodeURIComponent(name)}`, { namespace }), { allow: [404] });
    if (res.status === 404) return undefined;
    return this.parse(res, functionStatusSchema, `GET /system/function/${name}`);
  }

  /**
   * Creates or updates a function the way `faas-cli deploy` does: PUT /system/functions (rolling
   * update) and, when the gateway answers 404 (no such function yet), POST /system/functions.
   */
  async deploy(deployment: FunctionDeployment): Promise<'created' | 'updated'> {
    const body = functionDeploymentSchema.parse(deployment);
    const put = await this.system('PUT', '/system/functions', { json: body, allow: [404] });
    if (put.status !== 404) return 'updated';
    await this.system('POST', '/system/functions', { json: body });
    return 'created';
  }

  /** DELETE /system/functions; FunctionNotFoundError when there is nothing to remove. */
  async remove(name: string, namespace?: string): Promise<void> {
    const res = await this.system('DELETE', withQuery('/system/functions', { namespace }), {
      json: { functionName: name },
      allow: [404],
    });
    if (res.status === 404) {
      throw new FunctionNotFoundError(
        `there is no function "${name}"${namespace ? ` in namespace ${namespace}` : ''} on ${this.url}`,
        'list the deployed functions with `pifaas ls`',
        404,
        res.body.toString('utf8'),
      );
    }
  }

  /** POST /system/scale-function/{name}. */
  async scale(name: string, replicas: number, namespace?: string): Promise<void> {
    const res = await this.system('POST', withQuery(`/system/scale-function/${encodeURIComponent(name)}`, { namespace }), {
      json: { serviceName: name, replicas, ...(namespace ? { namespace } : {}) },
      allow: [404],
    });
    if (res.status === 404) throw new FunctionNotFoundError(`there is no function "${name}" to scale on ${this.url}`, 'list the deployed functions with `pifaas ls`', 404, res.body.toString('utf8'));
  }

  /** GET /system/namespaces (faas-netes lists them; faas-swarm has none and answers []). */
  async namespaces(): Promise<string[]> {
    const res = await this.system('GET', '/system/namespaces', { allow: [404] });
    if (res.status === 404) return [];
    return this.parse(res, namespaceListSchema, 'GET /system/namespaces');
  }

  /**
   * POST /function/{name} (or /function/{name}.{namespace}): calls the function synchronously and
   * returns its answer whatever the status; only "no such function" and transport failures throw.
   */
  async invoke(name: string, body: Buffer | Uint8Array | string | undefined, opts: InvokeOptions = {}): Promise<InvokeResult> {
    const target = `/function/${encodeURIComponent(name)}${opts.namespace ? `.${encodeURIComponent(opts.namespace)}` : ''}${opts.path ?? ''}`;
    const method = opts.method ?? (body === undefined ? 'GET' : 'POST');
    const res = await this.exchange(method, target, {
      auth: false,
      body: body === undefined ? undefined : typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
      headers: body !== undefined ? { 'content-type': opts.contentType ?? 'application/octet-stream' } : {},
      signal: opts.signal,
      noTimeout: true,
    });
    const answer = res.body;
    if (res.status === 404) {
      throw new FunctionNotFoundError(
        `the gateway at ${this.url} has no function "${name}"${opts.namespace ? ` in namespace ${opts.namespace}` : ''}: ${answer.toString('utf8').trim() || 'Not Found'}`,
        `deploy it first with \`pifaas deploy ${name}\`, or list what is there with \`pifaas ls\``,
        404,
        answer.toString('utf8'),
      );
    }
    return { status: res.status, contentType: res.contentType, body: answer };
  }

  /** GET /system/logs: the function's log lines, parsed from the NDJSON stream as they arrive. */
  async *logs(opts: LogsOptions): AsyncGenerator<LogEntry> {
    const query: Record<string, string | undefined> = {
      name: opts.name,
      namespace: opts.namespace,
      follow: String(opts.follow ?? false),
      tail: opts.tail ? String(opts.tail) : undefined,
      since: opts.since?.toISOString(),
    };
    const target = withQuery('/system/logs', query);
    let res: Response;
    try {
      res = await this.open('GET', target, { auth: true, signal: opts.signal });
    } catch (e) {
      // Interrupted (Ctrl-C) before the gateway answered: there is nothing to show, and nothing failed.
      if (opts.signal?.aborted) return;
      throw e;
    }
    if (!res.ok) {
      const text = await this.rest(res, 'GET', target);
      if (res.status === 404) {
        throw new FunctionNotFoundError(`the gateway at ${this.url} has no logs for "${opts.name}": ${text.trim() || 'Not Found'}`, 'check the name with `pifaas ls`', 404, text);
      }
      throw this.refusal('GET', target, res.status, res.statusText, res.headers.get('content-type'), text.trim());
    }
    if (!res.body) return;
    const decoder = new TextDecoder();
    let pending = '';
    let lines = 0;
    const parseLine = (line: string): LogEntry | undefined => {
      if (!line.trim()) return undefined;
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch (e) {
        throw new GatewayError(`the gateway at ${this.url} sent a log line that is not JSON: ${line.slice(0, 200)}`, undefined, res.status, undefined, { cause: e });
      }
      const r = logEntrySchema.safeParse(json);
      if (!r.success) throw new GatewayError(`the gateway at ${this.url} sent a log line pifaas does not understand: ${z.prettifyError(r.error)}`, undefined, res.status);
      lines++;
      return r.data;
    };
    try {
      for await (const chunk of res.body) {
        pending += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const entry = parseLine(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
          if (entry) yield entry;
        }
      }
    } catch (e) {
      if (opts.signal?.aborted) return;
      if (e instanceof GatewayError) throw e;
      throw new GatewayUnreachableError(
        `the log stream of "${opts.name}" from the gateway at ${this.url} broke off after ${lines} line${lines === 1 ? '' : 's'} (${brokenBecause(e)})`,
        `run \`pifaas logs ${opts.name}\` again (--since picks up from a time); if it keeps breaking off, the gateway or a proxy in front of it is dropping the connection (\`docker service logs func_gateway\` on a manager)`,
        undefined,
        undefined,
        { cause: e },
      );
    }
    const last = parseLine(pending + decoder.decode());
    if (last) yield last;
  }

  // ---- transport ----

  /** A /system/* call with basic auth; any status but 2xx and `allow` is thrown as a GatewayError. */
  private async system(method: string, target: string, opts: { json?: unknown; allow?: number[] } = {}): Promise<GatewayAnswer> {
    const res = await this.exchange(method, target, {
      auth: true,
      body: opts.json === undefined ? undefined : JSON.stringify(opts.json),
      headers: opts.json === undefined ? {} : { 'content-type': 'application/json' },
    });
    if (res.ok || opts.allow?.includes(res.status)) return res;
    throw this.refusal(method, target, res.status, res.statusText, res.contentType, res.body.toString('utf8').trim());
  }

  /** The error for a gateway that answered a /system/* call with an unwanted status. */
  private refusal(method: string, target: string, status: number, statusText: string, contentType: string | null, text: string): GatewayError {
    const call = `${method} ${target.split('?')[0]}`;
    if (status === 401) {
      return new GatewayUnauthorizedError(
        this.credentials
          ? `the gateway at ${this.url} refused the saved credentials (401 Unauthorized on ${call})`
          : `the gateway at ${this.url} wants credentials (401 Unauthorized on ${call}) and none are saved for it`,
        this.credentials
          ? 'the password changed or belongs to another gateway: run `pifaas openfaas install` again for this cluster, or `faas-cli login --gateway URL --password-stdin`'
          : 'pifaas reads them from ~/.openfaas/config.yml (OPENFAAS_CONFIG to move it) for exactly this URL: run `pifaas openfaas install INVENTORY` or `faas-cli login --gateway URL --password-stdin`, or fix --gateway / OPENFAAS_URL',
        401,
        text,
      );
    }
    if (/html/i.test(contentType ?? '')) {
      // The gateway and its providers answer errors in plain text: a web page is a proxy's or another server's.
      const title = /<title[^>]*>([^<]*)<\/title>/i.exec(text)?.[1]?.trim();
      return new GatewayError(
        `the gateway at ${this.url} answered ${status} ${statusText} to ${call} with a web page${title ? ` ("${title}")` : ''}, not an answer of OpenFaaS`,
        'a proxy or another web server answers at this address: the OpenFaaS gateway behind a proxy is down, or --gateway / OPENFAAS_URL / provider.gateway names something else; check the URL and the gateway task (`docker service ps func_gateway` on a manager)',
        status,
        text,
      );
    }
    return new GatewayError(
      `the gateway at ${this.url} answered ${status} ${statusText} to ${call}${text ? `: ${text.slice(0, 500)}` : ''}`,
      status >= 500 ? 'the provider (faas-swarm / faas-netes) behind the gateway failed; its own logs say why (`docker service logs func_faas-swarm` on a manager)' : undefined,
      status,
      text,
    );
  }

  /**
   * One request and its whole answer. The time limit (of /system/* calls; none with noTimeout)
   * covers reading the body too: a gateway or proxy that sends its headers and then stalls is as
   * unreachable as one that never answers. The timer is pifaas's own, not AbortSignal.timeout():
   * Node may collect that signal once fetch has returned the headers, and then it never fires.
   */
  private async exchange(
    method: string,
    target: string,
    opts: { auth: boolean; body?: string | Buffer; headers?: Record<string, string>; signal?: AbortSignal; noTimeout?: boolean },
  ): Promise<GatewayAnswer> {
    const deadline = new AbortController();
    const timer = opts.noTimeout ? undefined : setTimeout(() => deadline.abort(new DOMException('the gateway did not answer in time', 'TimeoutError')), this.requestTimeoutMs);
    const signal = opts.signal ? AbortSignal.any([deadline.signal, opts.signal]) : deadline.signal;
    let res: Response | undefined;
    try {
      res = await fetch(this.url + target, { method, headers: this.headers(opts), body: opts.body, signal, redirect: 'manual' });
      const body = Buffer.from(await res.arrayBuffer());
      return { status: res.status, statusText: res.statusText, ok: res.ok, contentType: res.headers.get('content-type'), body };
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      throw this.unreachable(e, method, target, { answering: res !== undefined, timedOut: deadline.signal.aborted });
    } finally {
      clearTimeout(timer);
    }
  }

  /** A request whose answer is a stream (the log stream): its headers; the body is the caller's. */
  private async open(method: string, target: string, opts: { auth: boolean; signal?: AbortSignal }): Promise<Response> {
    try {
      return await fetch(this.url + target, { method, headers: this.headers(opts), signal: opts.signal, redirect: 'manual' });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      throw this.unreachable(e, method, target, { answering: false, timedOut: false });
    }
  }

  /** The rest of an answer opened with open(), as text. */
  private async rest(res: Response, method: string, target: string): Promise<string> {
    try {
      return await res.text();
    } catch (e) {
      throw this.unreachable(e, method, target, { answering: true, timedOut: false });
    }
  }

  private headers(opts: { auth: boolean; headers?: Record<string, string> }): Record<string, string> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.auth && this.credentials) {
      headers.authorization = `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
    }
    return headers;
  }

  private unreachable(e: unknown, method: string, target: string, how: { answering: boolean; timedOut: boolean }): GatewayUnreachableError {
    const call = `${method} ${target.split('?')[0]}`;
    const seconds = Math.round(this.requestTimeoutMs / 1000);
    if (how.answering) {
      return new GatewayUnreachableError(
        `the gateway at ${this.url} began answering ${call} but ${how.timedOut ? `did not finish within ${seconds} s` : `the connection broke off (${brokenBecause(e)})`}`,
        'the gateway, or a proxy in front of it, dropped the answer: run the command again; if it keeps happening, look at the gateway (`docker service logs func_gateway` on a manager) and at anything between this machine and it',
        undefined,
        undefined,
        { cause: e },
      );
    }
    const err = e as { name?: string; cause?: { code?: string; message?: string } };
    const code = err.cause?.code;
    const why =
      how.timedOut || err.name === 'TimeoutError'
        ? `no answer within ${seconds} s`
        : code === 'ECONNREFUSED'
          ? 'connection refused'
          : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
            ? 'unknown host name'
            : code === 'EHOSTUNREACH' || code === 'ENETUNREACH'
              ? 'no route to the host'
              : code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT'
                ? 'connection timed out'
                : (code ?? err.cause?.message ?? String(e));
    return new GatewayUnreachableError(
      `cannot reach the OpenFaaS gateway at ${this.url} (${why}) for ${call}`,
      'check the address and port (--gateway, OPENFAAS_URL or provider.gateway in stack.yml); is OpenFaaS installed (`pifaas openfaas install INVENTORY`) and its gateway task running (`docker service ps func_gateway` on a manager)?',
      undefined,
      undefined,
      { cause: e },
    );
  }

  private parse<S extends z.ZodType>(res: GatewayAnswer, schema: S, call: string): z.output<S> {
    const text = res.body.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new GatewayError(`the gateway at ${this.url} answered ${call} with something that is not JSON: ${text.slice(0, 200)}`, 'is this URL an OpenFaaS gateway?', res.status, text, { cause: e });
    }
    const r = schema.safeParse(json);
    if (!r.success) {
      throw new GatewayError(`the gateway at ${this.url} answered ${call} in a form pifaas does not understand:\n${z.prettifyError(r.error)}`, 'is this URL an OpenFaaS gateway?', res.status, text);
    }
    return r.data;
  }
}

/** A whole answer of the gateway, read within the request's time limit. */
interface GatewayAnswer {
  status: number;
  statusText: string;
  ok: boolean;
  contentType: string | null;
  body: Buffer;
}

/** Why a connection broke off mid-answer, in undici's words ("other side closed", ECONNRESET). */
function brokenBecause(e: unknown): string {
  const err = e as { message?: string; cause?: { code?: string; message?: string } };
  return err.cause?.message || err.cause?.code || err.message || String(e);
}

function withQuery(path: string, query: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
