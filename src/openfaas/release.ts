// Why: OpenFaaS ended Docker Swarm support in December 2020 and removed its Swarm stack files, so
// pifaas pins the last Swarm-compatible release itself. This is the one place that names every image,
// version and timeout of that stack: bump a tag here and `pifaas openfaas install` updates exactly the
// services whose image changed. Everything else (service specs, configs) is derived from it.

/** CPU families pifaas knows, with the names Docker and Kubernetes give them. */
export type CpuFamily = 'amd64' | 'arm64' | 'arm';

export interface PinnedImage {
  repository: string;
  tag: string;
  /**
   * The image is published as one tag per architecture (`-armhf`, `-arm64`, none for amd64) instead
   * of a multi-arch manifest list; pifaas picks the tag by the manager's architecture.
   */
  perArchTags?: boolean;
}

export const OPENFAAS_SWARM_RELEASE = {
  /** The `docker stack` namespace: `docker stack ps func` lists the services. */
  stackNamespace: 'func',
  images: {
    gateway: { repository: 'openfaas/gateway', tag: '0.18.18', perArchTags: true },
    basicAuthPlugin: { repository: 'openfaas/basic-auth-plugin', tag: '0.18.18', perArchTags: true },
    faasSwarm: { repository: 'openfaas/faas-swarm', tag: '0.9.0', perArchTags: true },
    nats: { repository: 'nats-streaming', tag: '0.17.0' },
    queueWorker: { repository: 'openfaas/queue-worker', tag: '0.11.2' },
    prometheus: { repository: 'prom/prometheus', tag: 'v2.11.0' },
    alertmanager: { repository: 'prom/alertmanager', tag: 'v0.18.0' },
  } satisfies Record<string, PinnedImage>,
  /** Suffix of the per-architecture tags OpenFaaS published for its Go components. */
  archTagSuffix: { amd64: '', arm64: '-arm64', arm: '-armhf' } satisfies Record<CpuFamily, string>,
  /**
   * Timeouts in seconds, long enough for a ResNet-50 on a Pi and consistent along the call chain:
   * the function's own exec_timeout fires first (a clean JSON error), its HTTP read/write timeouts
   * outlast it, the gateway's upstream call outlasts those, and the gateway's HTTP server outlasts
   * the upstream call; async requests are acknowledged no sooner than the gateway gives up.
   */
  timeouts: {
    functionExec: 60,
    functionReadWrite: 65,
    gatewayUpstream: 70,
    gatewayReadWrite: 75,
    queueAckWait: 75,
  },
  /** Docker API version faas-swarm 0.9.0 speaks unless the daemon refuses versions that old. */
  faasSwarmDockerApiVersion: '1.30',
  /** The basic-auth user of the gateway (the password is generated at install time). */
  adminUser: 'admin',
  /** Swarm secrets the gateway, providers and queue worker read, named as upstream. */
  secrets: { user: 'basic-auth-user', password: 'basic-auth-password' },
  /** The overlay network functions join; faas-swarm finds it by the openfaas=true label. */
  functionsNetwork: 'functions',
  defaultGatewayPort: 8080,
} as const;

export type OpenFaaSComponent = keyof typeof OPENFAAS_SWARM_RELEASE.images;

/** Docker's and uname's architecture names (x86_64, aarch64, armv7l, ...) as a CPU family. */
export function cpuFamilyOf(arch: string): CpuFamily {
  const a = arch.toLowerCase();
  if (a === 'x86_64' || a === 'amd64') return 'amd64';
  if (a === 'aarch64' || a === 'arm64' || a === 'armv8l' || a === 'arm64/v8') return 'arm64';
  if (a.startsWith('armv7') || a.startsWith('armv6') || a === 'armhf' || a === 'arm' || a === 'arm/v7') return 'arm';
  throw new Error(`OpenFaaS publishes no images for the ${arch} architecture (only amd64, arm64 and armhf)`);
}

/** The full image reference of a component for a CPU family. */
export function imageFor(component: OpenFaaSComponent, family: CpuFamily): string {
  const img: PinnedImage = OPENFAAS_SWARM_RELEASE.images[component];
  const suffix = img.perArchTags ? OPENFAAS_SWARM_RELEASE.archTagSuffix[family] : '';
  return `${img.repository}:${img.tag}${suffix}`;
}

/** "60s": the Go duration syntax OpenFaaS components and the function read. */
export function goDuration(seconds: number): string {
  return `${seconds}s`;
}
