// Why: without the buildx plugin, pifaas builds each platform's image through the Docker Engine API
// (dockerode, BuildKit enabled with version "2"): the right Dockerfile and `platform`, the build
// context packed from the temporary folder, progress lines for the task list, and a clear error
// with the failing step's output when a build breaks.
import type Docker from 'dockerode';
import { UserError } from '../user-error.js';
import type { BuildContext } from './build-context.js';
import { DockerStreamError, followDockerStream } from './docker-stream.js';
import type { FunctionPlatform } from './platforms.js';

export interface PlatformBuildSpec {
  platform: FunctionPlatform;
  /** Tags given to the built image ("pifaas/faas-resnet:latest-arm64", ...). */
  tags: string[];
  buildArgs: Record<string, string>;
  noCache?: boolean;
  /** Credentials BuildKit may ask for when pulling a private base image. */
  auth?: { username: string; password: string; serveraddress: string };
}

export interface BuiltImage {
  id: string;
  /** Uncompressed size of all its layers, as `docker image ls` shows. */
  size: number;
  os: string;
  architecture: string;
  variant?: string;
}

/** Builds one platform's image in the daemon behind `docker` and returns what `docker image inspect` says of it. */
export async function buildWithEngine(docker: Docker, context: BuildContext, spec: PlatformBuildSpec, onLine?: (line: string) => void): Promise<BuiltImage> {
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.buildImage(
      { context: context.dir, src: context.entries },
      {
        t: spec.tags,
        dockerfile: spec.platform.dockerfile,
        platform: spec.platform.name,
        version: '2',
        buildargs: spec.buildArgs,
        nocache: spec.noCache ?? false,
        rm: true,
        forcerm: true,
        ...(spec.auth ? { authconfig: spec.auth } : {}),
      } as unknown as Docker.ImageBuildOptions,
    );
  } catch (e) {
    throw new UserError(`Docker refused to build for ${spec.platform.name}: ${(e as Error).message}`, 'check that the Docker daemon runs and is version 18.09 or newer (BuildKit)');
  }
  try {
    await followDockerStream(stream, onLine);
  } catch (e) {
    if (e instanceof DockerStreamError) {
      const tail = e.tail.slice(-15).map((l) => `  ${l}`).join('\n');
      throw new UserError(
        `building ${spec.platform.name} (${spec.platform.dockerfile}) failed: ${e.message}${tail ? `\nlast output:\n${tail}` : ''}`,
        /pull access denied|not found|failed to resolve|failed to do request|no match for platform/i.test(e.message)
          ? 'the base image could not be fetched for this platform: check the network, or point --base-image at a registry you can reach'
          : 'the lines above come from the failing build step',
      );
    }
    throw e;
  }
  const info = await docker.getImage(spec.tags[0] as string).inspect();
  return {
    id: info.Id,
    size: info.Size,
    os: info.Os,
    architecture: info.Architecture,
    ...((info as { Variant?: string }).Variant ? { variant: (info as { Variant?: string }).Variant } : {}),
  };
}
