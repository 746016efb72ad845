// Why: `pifaas build --push REGISTRY` on the Docker Engine path pushes each platform's image under its
// own tag (faas-resnet:latest-arm64) and then writes one manifest list (faas-resnet:latest) naming
// them all, so `docker pull` or a swarm node on any of the platforms gets its own image by one name.
import type Docker from 'dockerode';
import { UserError } from '../user-error.js';
import { loadRegistryCredentials } from './docker-credentials.js';
import { DockerStreamError, followDockerStream } from './docker-stream.js';
import { DOCKER_HUB } from './image-ref.js';
import { RegistryClient, type PlatformSpec } from './registry-client.js';

export interface PushedImage {
  /** registry/repository:tag */
  reference: string;
  /** Manifest digest in the registry. */
  digest: string;
  mediaType: string;
  size: number;
}

/** The Engine API's X-Registry-Auth for a registry: saved credentials, or anonymous. */
export async function engineAuthFor(registry: string): Promise<{ username?: string; password?: string; serveraddress: string }> {
  const creds = await loadRegistryCredentials(registry);
  const serveraddress = registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry;
  return creds ? { username: creds.username, password: creds.password, serveraddress } : { serveraddress };
}

/**
 * Tags a local image as registry/repository:tag, pushes it through the daemon, and reads back the
 * manifest the registry stored (digest, media type, size) for the manifest list.
 */
export async function pushImage(
  docker: Docker,
  client: RegistryClient,
  localImage: string,
  repository: string,
  tag: string,
  onLine?: (line: string) => void,
): Promise<PushedImage> {
  const remoteRepo = `${client.registry}/${repository}`;
  await docker.getImage(localImage).tag({ repo: remoteRepo, tag });
  const stream = (await docker.getImage(remoteRepo).push({ tag, authconfig: await engineAuthFor(client.registry) })) as NodeJS.ReadableStream;
  let digest: string | undefined;
  try {
    const { aux } = await followDockerStream(stream, onLine);
    digest = aux.map((a) => a.Digest).find((d): d is string => typeof d === 'string');
  } catch (e) {
    if (e instanceof DockerStreamError) {
      throw new UserError(
        `pushing ${remoteRepo}:${tag} failed: ${e.message}`,
        /http: server gave HTTP response to HTTPS client/.test(e.message)
          ? `the registry speaks plain HTTP: add "${client.registry}" to "insecure-registries" in /etc/docker/daemon.json and restart Docker, and give --insecure-registry`
          : /denied|unauthorized|authentication required/i.test(e.message)
            ? `log in first: docker login ${client.registry}`
            : 'check the registry address and that it is running',
      );
    }
    throw e;
  }
  const manifest = await client.getManifest(repository, digest ?? tag);
  if (!manifest) throw new Error(`${client.registry} has no manifest for ${repository}:${tag} right after the push`);
  return { reference: `${remoteRepo}:${tag}`, digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.size };
}

/** Writes the manifest list `repository:tag` naming one pushed image per platform. */
export async function publishManifestList(
  client: RegistryClient,
  repository: string,
  tag: string,
  images: { pushed: PushedImage; platform: PlatformSpec }[],
): Promise<{ reference: string; digest: string }> {
  const { digest } = await client.putManifestList(
    repository,
    tag,
    images.map((i) => ({ digest: i.pushed.digest, size: i.pushed.size, mediaType: i.pushed.mediaType, platform: i.platform })),
  );
  return { reference: `${client.registry}/${repository}:${tag}`, digest };
}
