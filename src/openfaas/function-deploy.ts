// Why: `pifaas deploy NAME` is more than one REST call: pick the function namespace the provider
// expects (faas-netes: openfaas-fn; faas-swarm: none), translate stack.yml's resources and constraints
// for that provider, create or update the function, wait until a replica is really available, and
// when it never is, say why (the swarm task's error). Commands render what this returns.
import { UserError } from '../user-error.js';
import type { FunctionStatus, GatewayInfo } from './gateway-schemas.js';
import type { GatewayClient, InvokeResult } from './gateway-client.js';
import { toFunctionDeployment, type StackFunction } from './stack-file.js';
import { diagnoseTasks, type FunctionTaskSource, type TaskDiagnosis, type TaskReport } from './swarm-tasks.js';

/** faas-cli's default function namespace, used by faas-netes. */
export const DEFAULT_FUNCTION_NAMESPACE = 'openfaas-fn';

export interface ProviderTarget {
  info: GatewayInfo;
  /** swarm, kubernetes, ... ('' when the gateway does not say). */
  orchestration: string;
  /** The namespace to send, undefined on providers without namespaces. */
  namespace?: string;
}

/**
 * Reads the provider behind the gateway and settles the namespace as faas-cli does (flag, then
 * stack.yml, then openfaas-fn), checked against the provider's own list; providers without
 * namespaces (faas-swarm) get none.
 */
export async function resolveTarget(client: GatewayClient, wanted: { flag?: string; stack?: string } = {}): Promise<ProviderTarget> {
  const info = await client.info();
  const orchestration = info.provider?.orchestration ?? '';
  if (orchestration === 'swarm' || orchestration === '') return { info, orchestration };
  const namespace = wanted.flag || wanted.stack || DEFAULT_FUNCTION_NAMESPACE;
  const known = await client.namespaces();
  if (known.length && !known.includes(namespace)) {
    throw new UserError(
      `${info.provider?.provider ?? 'the provider'} at ${client.url} has no function namespace "${namespace}"`,
      `it has: ${known.join(', ')}; pass --namespace (or set namespace: in stack.yml) to one of them`,
    );
  }
  return { info, orchestration, namespace };
}

/** Swarm-style placement constraints in the form faas-netes reads (label=value node selectors). */
export function constraintsFor(orchestration: string, constraints: string[] | undefined): string[] | undefined {
  if (!constraints || orchestration !== 'kubernetes') return constraints;
  const arch: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', armv7l: 'arm' };
  return constraints.flatMap((c) => {
    const m = /^\s*node\.platform\.(os|arch)\s*==\s*(\S+)\s*$/.exec(c);
    if (m) return [m[1] === 'os' ? `kubernetes.io/os=${m[2]}` : `kubernetes.io/arch=${arch[m[2]!] ?? m[2]}`];
    // Other swarm expressions mean nothing to Kubernetes; label=value selectors pass through.
    return /==|!=/.test(c) ? [] : [c];
  });
}

export class FunctionNotReadyError extends UserError {
  constructor(
    message: string,
    hint: string,
    readonly diagnosis?: TaskDiagnosis,
  ) {
    super(message, hint);
  }
}

export interface WaitOptions {
  namespace?: string;
  image: string;
  timeoutMs?: number;
  pollMs?: number;
  /** The swarm's tasks, to explain a function that does not come up (swarm providers only). */
  tasks?: FunctionTaskSource;
  onProgress?: (status: FunctionStatus | undefined) => void;
  /** Consecutive polls that must see an available replica (default 2). */
  stablePolls?: number;
}

/** The swarm's tasks are an explanation, not a requirement: a manager that cannot be read gives none. */
async function readTasks(source: FunctionTaskSource, name: string): Promise<TaskReport[]> {
  try {
    return await source.tasks(name);
  } catch {
    return [];
  }
}

/** Polls GET /system/function/{name} until availableReplicas >= 1, failing early on a hopeless task. */
export async function waitUntilReady(client: GatewayClient, name: string, opts: WaitOptions): Promise<FunctionStatus> {
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const pollMs = opts.pollMs ?? 1000;
  const deadline = Date.now() + timeoutMs;
  let last: FunctionStatus | undefined;
  let diagnosis: TaskDiagnosis | undefined;
  // A task that dies at once (exec format error) is "running" for an instant, and the provider
  // counts it: a replica must be seen available on consecutive polls, and the swarm's tasks (when
  // pifaas can read them) must not tell a hopeless story.
  let readyPolls = 0;
  for (let round = 0; ; round++) {
    last = await client.getFunction(name, opts.namespace);
    opts.onProgress?.(last);
    const available = Boolean(last && last.availableReplicas >= 1);
    readyPolls = available ? readyPolls + 1 : 0;
    if (opts.tasks && (available || round % 3 === 2)) {
      diagnosis = diagnoseTasks(name, opts.image, await readTasks(opts.tasks, name));
      if (diagnosis?.fatal) throw new FunctionNotReadyError(diagnosis.message, diagnosis.hint, diagnosis);
    }
    if (last && readyPolls >= (opts.stablePolls ?? 2)) return last;
    if (Date.now() + pollMs > deadline) break;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  if (opts.tasks) diagnosis = diagnoseTasks(name, opts.image, await readTasks(opts.tasks, name));
  const seen = last ? `${last.availableReplicas} of ${last.replicas} replicas available` : 'the gateway does not list it';
  if (diagnosis) {
    throw new FunctionNotReadyError(`${name} did not become ready within ${Math.round(timeoutMs / 1000)} s (${seen}): ${diagnosis.message}`, diagnosis.hint, diagnosis);
  }
  throw new FunctionNotReadyError(
    `${name} did not become ready within ${Math.round(timeoutMs / 1000)} s (${seen})`,
    opts.tasks
      ? 'its tasks show no error yet: a large image may still be downloading; wait and run `pifaas ls`, or raise --timeout'
      : `\`docker service ps ${name} --no-trunc\` on a manager shows why (or give pifaas -i INVENTORY so it can look itself); raise --timeout for slow image pulls`,
  );
}

export interface DeployOptions {
  namespace?: string;
  timeoutMs?: number;
  pollMs?: number;
  tasks?: FunctionTaskSource;
  onStep?: (message: string) => void;
}

export interface DeployOutcome {
  name: string;
  image: string;
  action: 'created' | 'updated';
  provider: string;
  orchestration: string;
  namespace?: string;
  status: FunctionStatus;
  url: string;
}

/** Deploys one stack.yml function through the gateway and waits until it can answer. */
export async function deployFunction(client: GatewayClient, fn: StackFunction, opts: DeployOptions = {}): Promise<DeployOutcome> {
  const say = opts.onStep ?? (() => {});
  const target = await resolveTarget(client, { flag: opts.namespace, stack: fn.namespace });
  const provider = target.info.provider?.provider ?? 'unknown provider';
  say(`${provider} (${target.orchestration || 'unknown orchestration'}) at ${client.url}`);
  const deployment = toFunctionDeployment(fn, { orchestration: target.orchestration, namespace: target.namespace });
  if (!target.namespace) delete deployment.namespace;
  const constraints = constraintsFor(target.orchestration, deployment.constraints);
  if (constraints) deployment.constraints = constraints;
  const action = await client.deploy(deployment);
  say(`${action} ${fn.name} (${fn.image}); waiting for a replica`);
  const status = await waitUntilReady(client, fn.name, {
    namespace: target.namespace,
    image: fn.image,
    timeoutMs: opts.timeoutMs,
    pollMs: opts.pollMs,
    tasks: target.orchestration === 'swarm' ? opts.tasks : undefined,
  });
  return {
    name: fn.name,
    image: fn.image,
    action,
    provider,
    orchestration: target.orchestration,
    namespace: target.namespace,
    status,
    url: `${client.url}/function/${fn.name}${target.namespace ? `.${target.namespace}` : ''}`,
  };
}

/**
 * Calls a freshly ready function once. Right after a deployment the gateway may still answer 502/503
 * for a moment (DNS of the new service); those are retried for up to `retryMs`.
 */
export async function firstCall(
  client: GatewayClient,
  name: string,
  body: Buffer | undefined,
  opts: { namespace?: string; contentType?: string; retryMs?: number } = {},
): Promise<InvokeResult> {
  const deadline = Date.now() + (opts.retryMs ?? 20_000);
  for (;;) {
    const res = await client.invoke(name, body, {
      namespace: opts.namespace,
      contentType: opts.contentType,
      ...(body === undefined ? { path: '/_/health' } : {}),
    });
    if (![502, 503, 504].includes(res.status) || Date.now() > deadline) return res;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

