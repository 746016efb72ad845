// Why: image names are typed by users ("faas-resnet", "192.168.1.5:5000/faas-resnet:1.0",
// "node:20-bookworm-slim") and must be split the way Docker splits them (registry host, repository,
// tag or digest) before pifaas can talk to a registry or tag per-platform builds.
import { UserError } from '../user-error.js';

export const DOCKER_HUB = 'docker.io';

export interface ImageRef {
  /** Registry host[:port]; "docker.io" for Docker Hub. */
  registry: string;
  /** Repository path inside the registry ("library/node", "faas-resnet"). */
  repository: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Parses a Docker image reference with Docker's rules (a first part with "." or ":" or "localhost" is a registry). */
export function parseImageRef(text: string): ImageRef {
  const bad = (why: string) =>
    new UserError(`"${text}" is not a valid image name: ${why}`, 'use the form [REGISTRY/]NAME[:TAG], e.g. 192.168.1.5:5000/faas-resnet:1.0');
  let rest = text.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad('the digest after "@" must be sha256:<64 hex digits>');
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw bad(`the tag "${tag}" may only hold letters, digits, "_", "." and "-" (at most 128)`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    parts.shift();
  }
  if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p))) {
    throw bad('each path part must be lower-case letters and digits, optionally separated by ".", "_" or "-"');
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  return { registry, repository: parts.join('/'), ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** The name Docker shows for a reference (Docker Hub's "library/" and host dropped). */
export function formatImageRef(ref: ImageRef): string {
  let name = ref.repository;
  if (ref.registry === DOCKER_HUB) {
    if (name.startsWith('library/')) name = name.slice('library/'.length);
  } else name = `${ref.registry}/${name}`;
  if (ref.tag) name += `:${ref.tag}`;
  if (ref.digest) name += `@${ref.digest}`;
  return name;
}

/** A registry name as users type it to --push: "HOST[:PORT][/PATH]" (no tag). */
export function parseRegistryPrefix(text: string): { registry: string; path: string } {
  const trimmed = text.trim().replace(/^https?:\/\//, '').replace(/\/+$/, '');
  const [host, ...path] = trimmed.split('/');
  if (!host || !/^[a-zA-Z0-9.-]+(:\d{1,5})?$/.test(host) || path.some((p) => !COMPONENT.test(p))) {
    throw new UserError(
      `"${text}" is not a registry address`,
      'give HOST[:PORT] optionally followed by a path, e.g. --push 192.168.1.5:5000 or --push docker.io/myname',
    );
  }
  return { registry: host === 'index.docker.io' ? DOCKER_HUB : host, path: path.join('/') };
}

/** Loopback registries speak plain HTTP, as Docker allows by default. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
