// Why: without buildx, the per-platform images Docker Engine pushes must be joined into one
// multi-platform manifest list, and only the registry's own HTTP API (Docker Registry v2 /
// OCI distribution) can write one. No maintained npm client writes manifests, so this is a small
// fetch-based one: blobs, manifests, and the token/basic auth registries ask for.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { UserError } from '../user-error.js';
import { DOCKER_HUB, isLoopbackRegistry } from './image-ref.js';
import { type RegistryCredentials, loadRegistryCredentials } from './docker-credentials.js';

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

const ALL_MANIFESTS = [MEDIA.dockerList, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.ociManifest].join(', ');

export const platformSchema = z.object({
  os: z.string(),
  architecture: z.string(),
  variant: z.string().optional(),
});
export type PlatformSpec = z.infer<typeof platformSchema>;

const descriptorSchema = z.object({ mediaType: z.string(), digest: z.string(), size: z.number() });

export const manifestListSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema.extend({ platform: platformSchema.optional() })),
});
export type ManifestList = z.infer<typeof manifestListSchema>;

export const imageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;

export interface ManifestResponse {
  mediaType: string;
  digest: string;
  size: number;
  body: Buffer;
}

export interface RegistryClientOptions {
  /** Talk plain HTTP (loopback registries always do). */
  insecure?: boolean;
  /** Credentials; by default read from the Docker CLI's config (docker login). */
  credentials?: RegistryCredentials | null;
  /** Seconds before a request is abandoned. */
  timeoutSeconds?: number;
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** One registry (host[:port]); repositories are given per call. */
export class RegistryClient {
  readonly baseUrl: string;
  private token: string | undefined;
  private tokenScope: string | undefined;
  private credentials: RegistryCredentials | null | undefined;

  constructor(
    readonly registry: string,
    private readonly opts: RegistryClientOptions = {},
  ) {
    const host = registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
    const scheme = opts.insecure || isLoopbackRegistry(registry) ? 'http' : 'https';
    this.baseUrl = `${scheme}://${host}`;
    this.credentials = opts.credentials;
  }

  /** Checks the registry answers the v2 API (authorised or asking for auth). */
  async ping(): Promise<void> {
    await this.request('GET', '/v2/', undefined, { ok: [200, 401] });
  }

  async blobExists(repository: string, digest: string): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repository}/blobs/${digest}`, repository, { ok: [200, 404] });
    return res.status === 200;
  }

  /** Uploads a blob (a Buffer or a file) unless the registry has it; returns true when it was sent. */
  async putBlob(repository: string, digest: string, data: Buffer | { path: string }): Promise<boolean> {
    if (await this.blobExists(repository, digest)) return false;
    const start = await this.request('POST', `/v2/${repository}/blobs/uploads/`, repository, { ok: [202], push: true });
    const location = start.headers.get('location');
    if (!location) throw new Error(`${this.registry} started an upload without a Location header`);
    const url = new URL(location, this.baseUrl);
    url.searchParams.set('digest', digest);
    const size = Buffer.isBuffer(data) ? data.length : (await stat(data.path)).size;
    const body = Buffer.isBuffer(data) ? data : (Readable.toWeb(createReadStream(data.path)) as ReadableStream<Uint8Array>);
    await this.request('PUT', url.pathname + url.search, repository, {
      ok: [201],
      push: true,
      body,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    });
    return true;
  }

  /** The manifest (or list) for a tag or digest, or undefined when the registry has none. */
  async getManifest(repository: string, reference: string): Promise<ManifestResponse | undefined> {
    const res = await this.request('GET', `/v2/${repository}/manifests/${reference}`, repository, {
      ok: [200, 404],
      headers: { accept: ALL_MANIFESTS },
    });
    if (res.status === 404) return undefined;
    const body = Buffer.from(await res.arrayBuffer());
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0] ?? '';
    return { mediaType, digest: res.headers.get('docker-content-digest') ?? sha256Digest(body), size: body.length, body };
  }

  /** Stores a manifest or manifest list under a tag (or its digest) and returns its digest. */
  async putManifest(repository: string, reference: string, mediaType: string, body: Buffer): Promise<string> {
    const res = await this.request('PUT', `/v2/${repository}/manifests/${reference}`, repository, {
      ok: [201],
      push: true,
      body,
      headers: { 'content-type': mediaType },
    });
    return res.headers.get('docker-content-digest') ?? sha256Digest(body);
  }

  /** Writes a manifest list (an OCI index for OCI manifests) naming one manifest per platform, under `tag`. */
  async putManifestList(
    repository: string,
    tag: string,
    entries: { digest: string; size: number; mediaType: string; platform: PlatformSpec }[],
  ): Promise<{ digest: string; body: Buffer }> {
    // OCI manifests (Docker's containerd image store pushes those) go in an OCI index.
    const mediaType = entries.length > 0 && entries.every((e) => e.mediaType === MEDIA.ociManifest) ? MEDIA.ociIndex : MEDIA.dockerList;
    const list: ManifestList = {
      schemaVersion: 2,
      mediaType,
      manifests: entries.map((e) => ({ mediaType: e.mediaType, digest: e.digest, size: e.size, platform: e.platform })),
    };
    const body = Buffer.from(JSON.stringify(list, null, 3));
    const digest = await this.putManifest(repository, tag, mediaType, body);
    return { digest, body };
  }

  private async authHeader(repository: string | undefined, push: boolean, challenge: string): Promise<string | undefined> {
    if (this.credentials === undefined) this.credentials = await loadRegistryCredentials(this.registry);
    const creds = this.credentials;
    const basic = creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined;
    const scheme = challenge.split(' ')[0]?.toLowerCase();
    if (scheme === 'basic') return basic;
    if (scheme !== 'bearer') return undefined;
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!params.realm) return undefined;
    const scope = repository ? `repository:${repository}:${push ? 'pull,push' : 'pull'}` : params.scope;
    if (this.token && this.tokenScope === scope) return `Bearer ${this.token}`;
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    if (scope) url.searchParams.set('scope', scope);
    const res = await fetch(url, { headers: basic ? { authorization: basic } : {}, signal: this.signal() });
    if (!res.ok) {
      throw new UserError(
        `${this.registry} refused a token for ${repository ?? 'the registry'} (HTTP ${res.status})`,
        creds ? 'check the account has push rights to this repository' : `log in first: docker login ${this.registry}`,
      );
    }
    const json = z.object({ token: z.string().optional(), access_token: z.string().optional() }).parse(await res.json());
    this.token = json.token ?? json.access_token;
    this.tokenScope = scope;
    return this.token ? `Bearer ${this.token}` : undefined;
  }

  private signal(): AbortSignal {
    return AbortSignal.timeout((this.opts.timeoutSeconds ?? 600) * 1000);
  }

  private async request(
    method: string,
    path: string,
    repository: string | undefined,
    o: { ok: number[]; push?: boolean; body?: Buffer | ReadableStream<Uint8Array>; headers?: Record<string, string> },
  ): Promise<Response> {
    const send = async (authorization?: string) => {
      try {
        return await fetch(this.baseUrl + path, {
          method,
          headers: { ...o.headers, ...(authorization ? { authorization } : {}) },
          ...(o.body ? { body: o.body, duplex: 'half' } : {}),
          redirect: 'follow',
          signal: this.signal(),
        } as RequestInit);
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        throw new UserError(
          `cannot reach the registry ${this.registry} (${cause?.code ?? cause?.message ?? (err as Error).message})`,
          this.baseUrl.startsWith('https:')
            ? 'check the address and port; a registry without TLS on the LAN needs --insecure-registry (and the same in the nodes\' Docker daemon.json)'
            : 'check the address and port, and that the registry is running',
          1,
          { cause: err },
        );
      }
    };
    let res = await send(this.token ? `Bearer ${this.token}` : undefined);
    if (res.status === 401) {
      const challenge = res.headers.get('www-authenticate') ?? '';
      const auth = await this.authHeader(repository, o.push ?? false, challenge);
      if (auth) {
        if (o.body && !Buffer.isBuffer(o.body)) {
          throw new Error(`${this.registry} asked for credentials in the middle of a streamed upload`);
        }
        res = await send(auth);
      }
    }
    if (!o.ok.includes(res.status)) {
      const text = (await res.text().catch(() => '')).slice(0, 500);
      if (res.status === 401 || res.status === 403) {
        throw new UserError(
          `${this.registry} denied ${method} ${path} (HTTP ${res.status})`,
          `log in with \`docker login ${this.registry}\` (pifaas reads the Docker CLI's saved credentials)`,
        );
      }
      throw new Error(`${this.registry}: ${method} ${path} answered HTTP ${res.status} ${text}`);
    }
    return res;
  }
}
