// Why: one table of the platforms a function image is built for, which Dockerfile and inference
// engine each one takes, the tag suffix of its per-platform image, and how the names users type
// (--platforms arm64), Docker reports (aarch64, armv7l) and registries list (arm64/v8) map onto it.
import { UserError } from '../user-error.js';
import type { PlatformSpec } from './registry-client.js';

export type PlatformName = 'linux/amd64' | 'linux/arm64' | 'linux/arm/v7';

export interface FunctionPlatform {
  name: PlatformName;
  spec: PlatformSpec;
  /** Dockerfile, relative to the package root. */
  dockerfile: 'docker/Dockerfile.amd64' | 'docker/Dockerfile.armhf';
  engine: 'node' | 'web';
  /** Appended to the tag of the per-platform image: faas-resnet:latest-arm64. */
  tagSuffix: 'amd64' | 'arm64' | 'armv7';
}

export const FUNCTION_PLATFORMS: readonly FunctionPlatform[] = [
  { name: 'linux/amd64', spec: { os: 'linux', architecture: 'amd64' }, dockerfile: 'docker/Dockerfile.amd64', engine: 'node', tagSuffix: 'amd64' },
  { name: 'linux/arm64', spec: { os: 'linux', architecture: 'arm64', variant: 'v8' }, dockerfile: 'docker/Dockerfile.amd64', engine: 'node', tagSuffix: 'arm64' },
  { name: 'linux/arm/v7', spec: { os: 'linux', architecture: 'arm', variant: 'v7' }, dockerfile: 'docker/Dockerfile.armhf', engine: 'web', tagSuffix: 'armv7' },
];

const ALIASES: Record<string, PlatformName> = {
  'linux/amd64': 'linux/amd64',
  amd64: 'linux/amd64',
  x86_64: 'linux/amd64',
  x64: 'linux/amd64',
  'linux/x86_64': 'linux/amd64',
  'linux/arm64': 'linux/arm64',
  'linux/arm64/v8': 'linux/arm64',
  arm64: 'linux/arm64',
  aarch64: 'linux/arm64',
  'linux/aarch64': 'linux/arm64',
  'linux/arm/v7': 'linux/arm/v7',
  'linux/arm': 'linux/arm/v7',
  'linux/armhf': 'linux/arm/v7',
  arm: 'linux/arm/v7',
  armhf: 'linux/arm/v7',
  armv7: 'linux/arm/v7',
  armv7l: 'linux/arm/v7',
};

export function functionPlatform(name: PlatformName): FunctionPlatform {
  return FUNCTION_PLATFORMS.find((p) => p.name === name) as FunctionPlatform;
}

const supportedList = () => FUNCTION_PLATFORMS.map((p) => p.name).join(', ');

/** Parses --platforms ("linux/amd64,linux/arm64", "arm64,armhf"): known, without duplicates, in table order. */
export function parsePlatforms(text: string): FunctionPlatform[] {
  const names = new Set<PlatformName>();
  for (const raw of text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    const name = ALIASES[raw];
    if (!name) {
      const hint = /armv6|arm\/v6/.test(raw)
        ? 'ARMv6 boards (Pi Zero, Pi 1) have no Node.js 20 build; use a Pi 2 or newer'
        : `choose from ${supportedList()}`;
      throw new UserError(`unsupported platform "${raw}" in --platforms`, hint);
    }
    names.add(name);
  }
  if (names.size === 0) throw new UserError('--platforms is empty', `give one or more of ${supportedList()}, comma-separated`);
  return FUNCTION_PLATFORMS.filter((p) => names.has(p.name));
}

/** The platform of a Docker daemon, from /info's Architecture ("x86_64", "aarch64", "armv7l"). */
export function platformOfDaemon(node: string, architecture: string, osType = 'linux'): FunctionPlatform {
  const arch = architecture.toLowerCase();
  const name = osType === 'linux' ? ALIASES[arch] : undefined;
  if (!name) {
    throw new UserError(
      `${node}: Docker runs on ${osType}/${architecture}, which pifaas has no function image for`,
      arch.startsWith('armv6') ? 'ARMv6 boards (Pi Zero, Pi 1) have no Node.js 20 build; use a Pi 2 or newer' : `pifaas builds ${supportedList()}`,
    );
  }
  return functionPlatform(name);
}

/** The platform an image was built for (docker image inspect: Os, Architecture, Variant). */
export function platformOfImage(image: { Os?: string; Architecture?: string; Variant?: string }): PlatformName | undefined {
  const key = [image.Os ?? 'linux', image.Architecture ?? '', image.Variant].filter(Boolean).join('/');
  return ALIASES[key] ?? ALIASES[`${image.Os ?? 'linux'}/${image.Architecture ?? ''}`];
}

/** The platform of the machine pifaas runs on, when it is one we build. */
export function hostPlatform(arch: string = process.arch): PlatformName | undefined {
  return ({ x64: 'linux/amd64', arm64: 'linux/arm64', arm: 'linux/arm/v7' } as const)[arch as 'x64' | 'arm64' | 'arm'];
}

/** "pifaas/faas-resnet:latest" + arm64 -> "pifaas/faas-resnet:latest-arm64". */
export function platformTag(tag: string, platform: FunctionPlatform): string {
  return `${tag}-${platform.tagSuffix}`;
}
