// Why: `pifaas build` in one place: choose the model(s), lay out the build context, build every
// platform (buildx when installed, otherwise the Docker Engine API), tag the per-platform images, and
// with --push send them to a registry under one multi-platform manifest list. Returns what was built
// (size and build time per platform) for the command to print.
import Docker from 'dockerode';
import { Listr } from 'listr2';
import { UserError } from '../user-error.js';
import { chooseModels, makeBuildContext, packageRoot, packageVersion, type BuildContext, type ModelChoice } from './build-context.js';
import { buildxAvailable, buildxBuildArgv, imagetoolsCreateArgv, runDockerCli } from './buildx-builder.js';
import { loadRegistryCredentials } from './docker-credentials.js';
import { buildWithEngine, type BuiltImage } from './engine-builder.js';
import { formatImageRef, parseImageRef, parseRegistryPrefix } from './image-ref.js';
import { publishManifestList, pushImage, type PushedImage } from './manifest-publish.js';
import { hostPlatform, platformOfDaemon, platformTag, type FunctionPlatform, type PlatformName } from './platforms.js';
import { RegistryClient } from './registry-client.js';

export type BuilderChoice = 'auto' | 'buildx' | 'engine';

export interface BuildRequest {
  functionName: string;
  /** Model to bake and serve; default: see chooseModels. */
  model?: string;
  platforms: FunctionPlatform[];
  /** Local image repository; default pifaas/<function>. */
  repository?: string;
  /** Default "latest". Per-platform images get "-amd64", "-arm64", "-armv7". */
  tag?: string;
  /** Registry (HOST[:PORT][/PATH]) to push to, with a manifest list. */
  push?: string;
  /** The registry speaks plain HTTP (loopback registries always may). */
  insecureRegistry?: boolean;
  /** Base image instead of node:20-bookworm-slim (the Dockerfiles' NODE_IMAGE). */
  baseImage?: string;
  noCache?: boolean;
  builder?: BuilderChoice;
  /** Docker Engine client; default: DOCKER_HOST or the local socket. */
  docker?: Docker;
  /** listr2 options (renderer, output streams) chosen by the command. */
  taskList?: Record<string, unknown>;
  /** The pifaas package to build from (default: this one; tests and benchmarks use copies). */
  packageRoot?: string;
}

export interface PlatformImage {
  platform: PlatformName;
  dockerfile: string;
  engine: 'node' | 'web';
  /** Local tag of this platform's image. */
  image: string;
  id: string;
  /** Uncompressed size in bytes. */
  size: number;
  /** Build time in seconds. */
  seconds: number;
  /** Where it was pushed (registry/repository:tag-arch), with --push. */
  pushed?: string;
}

export interface BuildResult {
  function: string;
  /** PIFAAS_MODEL in the image ("" = the function picks among `models`). */
  model: string;
  models: string[];
  builder: 'buildx' | 'engine';
  notice?: string;
  contextBytes: number;
  images: PlatformImage[];
  /** NAME:TAG, given to the image of the Docker daemon's own platform when it was built. */
  localTag: string | null;
  manifestList: { reference: string; digest: string; platforms: PlatformName[] } | null;
  seconds: number;
}

/** Where a build's images go: local repository and tag, and the registry repository with --push. */
export function imageNames(req: Pick<BuildRequest, 'functionName' | 'repository' | 'tag' | 'push' | 'insecureRegistry'>) {
  const repository = req.repository ?? `pifaas/${req.functionName}`;
  const tag = req.tag ?? 'latest';
  const local = parseImageRef(`${repository}:${tag}`);
  if (local.digest) throw new UserError(`--image ${repository} must not hold a digest`, 'give a name like pifaas/faas-resnet');
  const name = local.repository.split('/').pop() as string;
  let registry: { registry: string; repository: string; insecure: boolean } | undefined;
  if (req.push) {
    const prefix = parseRegistryPrefix(req.push);
    registry = { registry: prefix.registry, repository: prefix.path ? `${prefix.path}/${name}` : name, insecure: req.insecureRegistry ?? false };
    if (prefix.registry === 'docker.io' && !prefix.path) {
      throw new UserError('--push docker.io needs your Docker Hub namespace', 'e.g. --push docker.io/yourname');
    }
  }
  return { localRepository: formatImageRef({ ...local, tag: undefined }), tag, registry };
}

async function chooseBuilder(choice: BuilderChoice, cliEnv: NodeJS.ProcessEnv): Promise<'buildx' | 'engine'> {
  if (choice === 'engine') return 'engine';
  const has = await buildxAvailable('docker', cliEnv);
  if (choice === 'buildx' && !has) {
    throw new UserError('docker buildx is not installed', 'install the buildx plugin (docker-buildx-plugin), or build through the Docker Engine API with --builder engine');
  }
  return has ? 'buildx' : 'engine';
}

/**
 * The environment of the docker CLI (buildx): it must build in the daemon the images are then read
 * from. A caller's own Docker client (tests, benchmarks) names that daemon; otherwise DOCKER_HOST does
 * for both.
 */
export function dockerCliEnv(docker: Docker | undefined, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const modem = docker?.modem as { socketPath?: unknown; host?: unknown; port?: unknown; protocol?: unknown } | undefined;
  if (typeof modem?.socketPath === 'string') return { ...env, DOCKER_HOST: `unix://${modem.socketPath}` };
  if (typeof modem?.host === 'string' && (modem.protocol === 'http' || modem.protocol === undefined)) {
    return { ...env, DOCKER_HOST: `tcp://${modem.host}:${String(modem.port ?? 2375)}` };
  }
  return env;
}

async function checkDocker(docker: Docker): Promise<void> {
  try {
    await docker.ping();
  } catch (e) {
    const where = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
    throw new UserError(
      `cannot reach the Docker daemon at ${where}: ${(e as Error).message}`,
      'start Docker (systemctl start docker), join the docker group, or set DOCKER_HOST',
    );
  }
}

/** Builds (and with --push, publishes) a function image for every requested platform. */
export async function buildFunctionImage(req: BuildRequest): Promise<BuildResult> {
  const started = performance.now();
  const names = imageNames(req);
  const docker = req.docker ?? new Docker();
  await checkDocker(docker);
  const cliEnv = dockerCliEnv(req.docker);
  const builder = await chooseBuilder(req.builder ?? 'auto', cliEnv);
  const root = req.packageRoot ?? packageRoot();
  const choice: ModelChoice = await chooseModels(req.functionName, req.model, process.env, root);
  const version = await packageVersion(root);
  const buildArgs: Record<string, string> = {
    FUNCTION: choice.function,
    MODEL: choice.model,
    MODELS: choice.models.map((m) => m.id).filter((id) => id !== choice.model).join(' '),
    // No commit or date label: the same inputs give the same image ID, so `pifaas push` skips nodes
    // that have it (docker build --build-arg REVISION=... still sets one).
    VERSION: version,
    ...(req.baseImage ? { NODE_IMAGE: req.baseImage } : {}),
  };
  const baseAuth = req.baseImage ? await loadRegistryCredentials(parseImageRef(req.baseImage).registry) : null;
  // The daemon's own platform gets the plain tag (DOCKER_HOST may be another machine than this one).
  const native = await docker.info().then(
    (info: { Architecture?: string; OSType?: string }) => platformOfDaemon('the Docker daemon', String(info.Architecture ?? ''), String(info.OSType ?? 'linux')).name,
    () => hostPlatform(),
  ).catch(() => undefined);
  const client = names.registry ? new RegistryClient(names.registry.registry, { insecure: names.registry.insecure }) : undefined;
  const images: PlatformImage[] = [];
  const pushed: { pushed: PushedImage; platform: FunctionPlatform }[] = [];
  let context: BuildContext | undefined;
  let manifestList: BuildResult['manifestList'] = null;

  const tasks = new Listr(
    [
      {
        title: `Build context for ${choice.function}`,
        task: async (_c, task) => {
          if (client) await client.ping();
          context = await makeBuildContext(choice, root);
          task.title = `Build context: ${choice.function} with ${choice.models.map((m) => `${m.id} (${m.where})`).join(', ')}, ${(context.bytes / 1e6).toFixed(1)} MB`;
        },
      },
      ...req.platforms.map((platform) => ({
        title: `${platform.name}: ${platform.dockerfile} (onnxruntime-${platform.engine})`,
        task: async (_c: unknown, task: { output: string; title: string }) => {
          const ctx = context as BuildContext;
          const image = `${names.localRepository}:${platformTag(names.tag, platform)}`;
          const tags = [image, ...(platform.name === native ? [`${names.localRepository}:${names.tag}`] : [])];
          const onLine = (line: string) => (task.output = line.length > 160 ? `${line.slice(0, 157)}...` : line);
          const t0 = performance.now();
          let built: BuiltImage;
          if (builder === 'engine') {
            built = await buildWithEngine(docker, ctx, {
              platform,
              tags,
              buildArgs,
              noCache: req.noCache,
              ...(baseAuth && req.baseImage ? { auth: { ...baseAuth, serveraddress: parseImageRef(req.baseImage).registry } } : {}),
            }, onLine);
          } else {
            await runDockerCli(buildxBuildArgv({ platform, contextDir: ctx.dir, buildArgs, tags, output: 'load', noCache: req.noCache }), onLine, 'docker', cliEnv);
            const info = await docker.getImage(image).inspect();
            built = { id: info.Id, size: info.Size, os: info.Os, architecture: info.Architecture };
          }
          const seconds = (performance.now() - t0) / 1000;
          images.push({ platform: platform.name, dockerfile: platform.dockerfile, engine: platform.engine, image, id: built.id, size: built.size, seconds });
          task.title = `${platform.name}: ${image}, ${(built.size / 1e6).toFixed(1)} MB, built in ${seconds.toFixed(1)} s`;
        },
      })),
      ...(names.registry && client
        ? [
            {
              title: `Push to ${names.registry.registry}/${names.registry.repository}`,
              task: async (_c: unknown, task: { output: string; title: string }) => {
                const reg = names.registry as NonNullable<typeof names.registry>;
                const onLine = (line: string) => (task.output = line);
                const target = `${reg.registry}/${reg.repository}:${names.tag}`;
                const sources: string[] = [];
                for (const platform of req.platforms) {
                  const image = images.find((i) => i.platform === platform.name) as PlatformImage;
                  const remoteTag = platformTag(names.tag, platform);
                  if (builder === 'engine') {
                    const p = await pushImage(docker, client, image.image, reg.repository, remoteTag, onLine);
                    pushed.push({ pushed: p, platform });
                    image.pushed = p.reference;
                  } else {
                    const ref = `${reg.registry}/${reg.repository}:${remoteTag}`;
                    await runDockerCli(buildxBuildArgv({ platform, contextDir: (context as BuildContext).dir, buildArgs, tags: [ref], output: 'push' }), onLine, 'docker', cliEnv);
                    sources.push(ref);
                    image.pushed = ref;
                  }
                }
                if (builder === 'engine') {
                  const list = await publishManifestList(client, reg.repository, names.tag, pushed.map((p) => ({ pushed: p.pushed, platform: p.platform.spec })));
                  manifestList = { ...list, platforms: req.platforms.map((p) => p.name) };
                } else {
                  await runDockerCli(imagetoolsCreateArgv(target, sources), onLine, 'docker', cliEnv);
                  const m = await client.getManifest(reg.repository, names.tag);
                  manifestList = { reference: target, digest: m?.digest ?? '', platforms: req.platforms.map((p) => p.name) };
                }
                task.title = `Pushed ${target} (manifest list: ${req.platforms.map((p) => p.name).join(', ')})`;
              },
            },
          ]
        : []),
    ],
    { concurrent: false, exitOnError: true, ...(req.taskList ?? {}) } as never,
  );
  try {
    await tasks.run();
  } finally {
    await context?.cleanup();
  }
  return {
    function: choice.function,
    model: choice.model,
    models: choice.models.map((m) => m.id),
    builder,
    ...(choice.notice ? { notice: choice.notice } : {}),
    contextBytes: (context as BuildContext | undefined)?.bytes ?? 0,
    images,
    localTag: req.platforms.some((p) => p.name === native) ? `${names.localRepository}:${names.tag}` : null,
    manifestList,
    seconds: (performance.now() - started) / 1000,
  };
}
