// Why: the one entry point for putting OpenFaaS on a swarm, shared by `pifaas openfaas install` and
// the provisioning step of `pifaas provision`: apply the stack through a manager's Docker API, keep
// the gateway's credentials in faas-cli's config file for the gateway's URL, and (optionally) wait
// until the gateway answers an authenticated call - or say which of its tasks cannot start and why.
import type Dockerode from 'dockerode';
import { UserError } from '../user-error.js';
import { lookupCredentials, openfaasConfigFile, saveCredentials } from './credentials.js';
import { GatewayClient, GatewayUnauthorizedError, GatewayUnreachableError, normalizeGatewayUrl, type GatewayCredentials } from './gateway-client.js';
import { OPENFAAS_SWARM_RELEASE } from './release.js';
import { installOpenFaaS, type InstallResult } from './stack-installer.js';
import type { PublishMode } from './swarm-stack.js';
import { diagnoseTasks, dockerFunctionTasks, type TaskDiagnosis } from './swarm-tasks.js';

export interface OpenFaaSInstallOptions {
  /** A swarm manager's Docker Engine API (dockerFor(operator) for a node reached over SSH). */
  docker: Dockerode;
  /** The address users reach the gateway at: the manager's inventory address. */
  gatewayHost: string;
  publish?: PublishMode;
  gatewayPort?: number;
  resetPassword?: boolean;
  /** Wait this long for the gateway to answer with the saved credentials (0: do not wait). */
  waitMs?: number;
  env?: NodeJS.ProcessEnv;
  onStep?: (message: string) => void;
}

export interface OpenFaaSInstallOutcome extends InstallResult {
  gatewayUrl: string;
  credentialsFile: string;
  username: string;
  /** Gateway and provider versions, when the gateway was waited for. */
  gatewayVersion?: string;
  provider?: string;
}

export async function installOpenFaaSOnSwarm(opts: OpenFaaSInstallOptions): Promise<OpenFaaSInstallOutcome> {
  const env = opts.env ?? process.env;
  const port = opts.gatewayPort ?? OPENFAAS_SWARM_RELEASE.defaultGatewayPort;
  const gatewayUrl = normalizeGatewayUrl(`http://${opts.gatewayHost}:${port}`);
  let creds: GatewayCredentials | undefined;
  // Moving the gateway to another port or address keeps the password: look it up where the
  // gateway was published before, and save it under the new URL.
  const previousUrls = await previousGatewayUrls(opts.docker, opts.gatewayHost);
  const result = await installOpenFaaS(opts.docker, {
    publish: opts.publish ?? 'ingress',
    gatewayPort: port,
    resetPassword: opts.resetPassword,
    onStep: opts.onStep,
    credentials: {
      load: async () => {
        creds = await lookupCredentials(gatewayUrl, env);
        for (const url of previousUrls) {
          if (creds) break;
          creds = await lookupCredentials(url, env);
          if (creds) await saveCredentials(gatewayUrl, creds, env);
        }
        return creds;
      },
      save: async (c) => {
        creds = c;
        await saveCredentials(gatewayUrl, c, env);
      },
    },
  });
  const outcome: OpenFaaSInstallOutcome = {
    ...result,
    gatewayUrl,
    credentialsFile: openfaasConfigFile(env),
    username: creds?.username ?? OPENFAAS_SWARM_RELEASE.adminUser,
  };
  if (opts.waitMs && creds) {
    opts.onStep?.(`waiting for the gateway at ${gatewayUrl}`);
    const images = new Map(result.services.map((s) => [s.name, s.image]));
    const info = await waitForGateway(opts.docker, new GatewayClient({ url: gatewayUrl, credentials: creds, requestTimeoutMs: 5000 }), opts.waitMs, images);
    outcome.gatewayVersion = info.version;
    outcome.provider = info.provider;
  }
  return outcome;
}

/** Swarm task states on the way to running: the task has neither started nor failed yet. */
const STARTING_STATES = new Set(['new', 'allocated', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting']);
/** How long the wait keeps watching services still starting once another one is known not to start. */
const UNDECIDED_GRACE_MS = 30_000;

/**
 * Polls GET /system/info with the credentials until it answers. A 401 means the swarm's password is
 * not the saved one; tasks that cannot start (no image, no internet to pull it) end the wait early.
 */
export async function waitForGateway(
  docker: Dockerode,
  client: GatewayClient,
  waitMs: number,
  images: Map<string, string> = new Map(),
): Promise<{ version?: string; provider?: string }> {
  const deadline = Date.now() + waitMs;
  const tasks = dockerFunctionTasks(docker);
  const gatewayService = `${OPENFAAS_SWARM_RELEASE.stackNamespace}_gateway`;
  const watched = ['gateway', 'faas-swarm', 'basic-auth-plugin'].map((s) => `${OPENFAAS_SWARM_RELEASE.stackNamespace}_${s}`);
  let firstFatalAt: number | undefined;
  for (let round = 0; ; round++) {
    try {
      const info = await client.info();
      return { version: info.version?.release, provider: info.provider ? `${info.provider.provider} ${info.provider.version?.release ?? ''}`.trim() : undefined };
    } catch (e) {
      if (e instanceof GatewayUnauthorizedError) {
        throw new UserError(
          `the gateway at ${client.url} refuses the password saved on this machine: the swarm holds another one`,
          'run the install again with --reset-password to give the swarm a new password (the core services are re-created)',
          1,
          { cause: e },
        );
      }
      if (!(e instanceof GatewayUnreachableError) && !(e instanceof UserError)) throw e;
    }
    // Every third round, or every round once a service is known not to start (to name them all).
    if (round % 3 === 0 || firstFatalAt !== undefined) {
      const fatal: TaskDiagnosis[] = [];
      let undecided = 0;
      for (const svc of watched) {
        const list = await tasks.tasks(svc);
        const d = diagnoseTasks(svc, images.get(svc) ?? svc, list, {
          missingImage: 'the nodes pull OpenFaaS\'s images from Docker Hub: give the swarm internet access (or `docker load` the images on each node) and run the install again',
        });
        if (d?.fatal) fatal.push(d);
        else if (list.length === 0 || STARTING_STATES.has(list[0]!.state)) undecided++;
      }
      if (fatal.length) {
        firstFatalAt ??= Date.now();
        // A service whose first task is still pulling may be about to fail the same way: the answer names
        // every service that cannot start, so it waits a little for those (a failed pull can take seconds).
        const now = Date.now();
        if (undecided === 0 || now - firstFatalAt > UNDECIDED_GRACE_MS || now > deadline) {
          if (fatal.length === 1) throw new UserError(`OpenFaaS cannot start: ${fatal[0]!.message}`, fatal[0]!.hint);
          throw new UserError(`OpenFaaS cannot start:\n${fatal.map((d) => `  ${d.message}`).join('\n')}`, fatal[0]!.hint);
        }
      }
    }
    if (Date.now() > deadline) {
      const list = await tasks.tasks(gatewayService);
      const d = diagnoseTasks(gatewayService, images.get(gatewayService) ?? gatewayService, list);
      throw new UserError(
        `the gateway at ${client.url} did not answer within ${Math.round(waitMs / 1000)} s${d ? `: ${d.message}` : ''}`,
        d?.hint ?? 'images may still be downloading: check `docker stack ps func` on the manager and run the install again (nothing is redone)',
      );
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** URLs the existing gateway service of this swarm is published at (before this install changes it). */
async function previousGatewayUrls(docker: Dockerode, host: string): Promise<string[]> {
  const name = `${OPENFAAS_SWARM_RELEASE.stackNamespace}_gateway`;
  const svc = (await docker.listServices({ filters: { name: [name] } })).find((s) => s.Spec?.Name === name);
  return (svc?.Spec?.EndpointSpec?.Ports ?? []).filter((p) => p.TargetPort === 8080 && p.PublishedPort).map((p) => normalizeGatewayUrl(`http://${host}:${p.PublishedPort}`));
}
