// Why: most Pi clusters have no registry, and a Docker Hub account should not be needed to run a
// function on your own boards. `pifaas push NAME --to inventory.yaml` sends each node the image built
// for its own platform (amd64, arm64, arm/v7 picked from the node's Docker), straight from the local
// Docker to the node's Docker over SSH (docker save | docker load, no registry), and skips nodes that
// already hold the same image ID. With --registry, nodes pull the multi-platform name from a LAN
// registry instead.
import type { Readable } from 'node:stream';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { Listr } from 'listr2';
import { formatBytes } from '../cli/output.js';
import type { Inventory, InventoryHost } from '../inventory/inventory.js';
import { dockerFor } from '../operator/docker-client.js';
import type { Operator } from '../operator/operator.js';
import type { InventoryConnector } from '../ssh/inventory-connect.js';
import { isUserError, UserError } from '../user-error.js';
import { DockerStreamError, followDockerStream } from './docker-stream.js';
import { engineAuthFor } from './manifest-publish.js';
import { formatImageRef, parseImageRef, parseRegistryPrefix } from './image-ref.js';
import { platformOfDaemon, platformTag, type PlatformName } from './platforms.js';
import { RegistryClient } from './registry-client.js';

export interface SideLoadRequest {
  functionName: string;
  inventory: Inventory;
  hosts: InventoryHost[];
  connector: InventoryConnector;
  /** Local image repository; default pifaas/<function>. */
  repository?: string;
  tag?: string;
  /** Nodes pull REGISTRY/<function>:<tag> (pushed by `pifaas build --push`) instead of receiving it over SSH. */
  registry?: string;
  insecureRegistry?: boolean;
  /** Local Docker Engine; default DOCKER_HOST or the local socket. */
  docker?: Docker;
  taskList?: Record<string, unknown>;
}

export type NodePushStatus = 'sent' | 'pulled' | 'unchanged' | 'failed';

export interface NodePushResult {
  node: string;
  platform: PlatformName | null;
  /** The tag the function runs from on the node (same on every node). */
  image: string;
  status: NodePushStatus;
  id: string | null;
  /** Bytes sent over SSH (0 when nothing was sent). */
  bytes: number;
  seconds: number;
  error?: { message: string; hint: string | null };
}

export interface SideLoadResult {
  function: string;
  image: string;
  source: 'ssh' | 'registry';
  nodes: NodePushResult[];
  ok: boolean;
}

function isNotFound(e: unknown): boolean {
  return (e as { statusCode?: number }).statusCode === 404;
}

async function imageId(docker: Docker, ref: string): Promise<string | undefined> {
  try {
    return (await docker.getImage(ref).inspect()).Id;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** Counts the bytes flowing through and reports them at most every 250 ms. */
function counting(source: Readable, total: number, report: (line: string) => void): { stream: PassThrough; bytes: () => number } {
  const started = performance.now();
  let bytes = 0;
  let last = 0;
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    const now = performance.now();
    if (now - last > 250) {
      last = now;
      const rate = bytes / Math.max((now - started) / 1000, 0.001);
      report(`sending ${formatBytes(bytes)} of ~${formatBytes(total)} (${formatBytes(rate)}/s)`);
    }
  });
  source.on('error', (e) => stream.destroy(e));
  source.pipe(stream);
  return { stream, bytes: () => bytes };
}

/** Sends (or lets it pull) the function image to one node. */
async function pushToNode(
  req: SideLoadRequest,
  local: Docker,
  names: { repository: string; tag: string; image: string },
  operator: Operator,
  result: NodePushResult,
  report: (line: string) => void,
): Promise<void> {
  const remote = dockerFor(operator);
  const info = await remote.info();
  const platform = platformOfDaemon(result.node, String(info.Architecture ?? ''), String(info.OSType ?? 'linux'));
  result.platform = platform.name;
  if (req.registry) {
    const prefix = parseRegistryPrefix(req.registry);
    const name = names.repository.split('/').pop() as string;
    const remoteRepo = `${prefix.registry}/${prefix.path ? `${prefix.path}/` : ''}${name}`;
    const before = await imageId(remote, names.image);
    report(`pulling ${remoteRepo}:${names.tag}`);
    const stream = await remote.pull(`${remoteRepo}:${names.tag}`, { authconfig: await engineAuthFor(prefix.registry) } as never);
    try {
      await followDockerStream(stream as NodeJS.ReadableStream, report);
    } catch (e) {
      if (e instanceof DockerStreamError) {
        throw new UserError(
          `${result.node}: pulling ${remoteRepo}:${names.tag} failed: ${e.message}`,
          /HTTPS client|https/i.test(e.message)
            ? `the registry speaks plain HTTP: provision the node with "${prefix.registry}" in Docker's insecure-registries`
            : `check that the node reaches ${prefix.registry} and that \`pifaas build ${req.functionName} --push ${req.registry}\` ran`,
        );
      }
      throw e;
    }
    const pulled = (await remote.getImage(`${remoteRepo}:${names.tag}`).inspect()).Id;
    await remote.getImage(pulled).tag({ repo: names.repository, tag: names.tag });
    result.id = pulled;
    result.status = before === pulled ? 'unchanged' : 'pulled';
    return;
  }
  const source = `${names.repository}:${platformTag(names.tag, platform)}`;
  let localInfo;
  try {
    localInfo = await local.getImage(source).inspect();
  } catch (e) {
    if (isNotFound(e)) {
      throw new UserError(
        `${result.node} runs ${platform.name}, but ${source} is not built here`,
        `build it first: pifaas build ${req.functionName} --platforms ${platform.name}`,
      );
    }
    throw e;
  }
  result.id = localInfo.Id;
  // The same image ID on the node: nothing to send; just make sure the function's tag points at it.
  if ((await imageId(remote, localInfo.Id)) === localInfo.Id) {
    if ((await imageId(remote, names.image)) !== localInfo.Id) await remote.getImage(localInfo.Id).tag({ repo: names.repository, tag: names.tag });
    result.status = 'unchanged';
    return;
  }
  const save = (await local.getImage(source).get()) as Readable;
  const counted = counting(save, localInfo.Size, report);
  const loading = await remote.loadImage(counted.stream, { quiet: true });
  try {
    await followDockerStream(loading, () => undefined);
  } catch (e) {
    if (e instanceof DockerStreamError) throw new UserError(`${result.node}: docker load failed: ${e.message}`, 'check the free disk space of the node (df -h /var/lib/docker)');
    throw e;
  }
  const loaded = await imageId(remote, source);
  if (loaded !== localInfo.Id) throw new Error(`${result.node}: after loading, ${source} is ${loaded ?? 'missing'}, not ${localInfo.Id}`);
  await remote.getImage(localInfo.Id).tag({ repo: names.repository, tag: names.tag });
  result.bytes = counted.bytes();
  result.status = 'sent';
}

/** Puts the function image on every selected node; a failing node does not stop the others. */
export async function sideLoadFunctionImage(req: SideLoadRequest): Promise<SideLoadResult> {
  const repository = formatImageRef({ ...parseImageRef(req.repository ?? `pifaas/${req.functionName}`), tag: undefined });
  const tag = req.tag ?? 'latest';
  const image = `${repository}:${tag}`;
  parseImageRef(image);
  const local = req.docker ?? new Docker();
  if (req.registry) {
    const prefix = parseRegistryPrefix(req.registry);
    const name = repository.split('/').pop() as string;
    const client = new RegistryClient(prefix.registry, { insecure: req.insecureRegistry });
    const path = `${prefix.path ? `${prefix.path}/` : ''}${name}`;
    if (!(await client.getManifest(path, tag))) {
      throw new UserError(`${prefix.registry}/${path}:${tag} is not in the registry`, `push it first: pifaas build ${req.functionName} --push ${req.registry}`);
    }
  } else {
    try {
      await local.ping();
    } catch (e) {
      throw new UserError(`cannot reach the local Docker daemon: ${(e as Error).message}`, 'the images to send are in the local Docker: start it, or set DOCKER_HOST');
    }
  }
  const results: NodePushResult[] = req.hosts.map((h) => ({ node: h.name, platform: null, image, status: 'failed', id: null, bytes: 0, seconds: 0 }));
  const operators: Operator[] = [];
  const tasks = new Listr(
    req.hosts.map((host, i) => ({
      title: `${host.name} (${host.address})`,
      task: async (_c: unknown, task: { output: string; title: string }) => {
        const result = results[i] as NodePushResult;
        const t0 = performance.now();
        try {
          const operator = await req.connector.connect(host);
          operators.push(operator);
          await pushToNode(req, local, { repository, tag, image }, operator, result, (line) => (task.output = line));
          result.seconds = (performance.now() - t0) / 1000;
          task.title = `${host.name}: ${result.platform} ${result.status}${result.status === 'sent' ? ` (${formatBytes(result.bytes)} in ${result.seconds.toFixed(1)} s)` : ''}`;
        } catch (e) {
          result.seconds = (performance.now() - t0) / 1000;
          result.status = 'failed';
          result.error = { message: (e as Error).message, hint: isUserError(e) ? (e.hint ?? null) : null };
          throw e;
        }
      },
    })),
    { ...(req.taskList ?? {}), concurrent: true, exitOnError: false, collectErrors: 'minimal' } as never,
  );
  try {
    await tasks.run();
  } finally {
    await Promise.all(operators.map((o) => o.close().catch(() => undefined)));
  }
  return { function: req.functionName, image, source: req.registry ? 'registry' : 'ssh', nodes: results, ok: results.every((r) => r.status !== 'failed') };
}
