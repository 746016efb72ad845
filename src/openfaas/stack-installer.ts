// Why: `pifaas openfaas install` must put the pinned OpenFaaS stack on a swarm through the Docker
// Engine API (no docker CLI, no compose file on the manager) and be safe to run again: objects that
// already match are left alone, a changed setting updates only the service it belongs to, and a run
// cut short is finished by the next one. The gateway password comes from a CSPRNG, is saved locally
// before the swarm secret is created (so it can never be lost), and is never logged.
import { randomBytes } from 'node:crypto';
import type Dockerode from 'dockerode';
import { updateOptimistically } from '../swarm/swarm-update.js';
import { UserError } from '../user-error.js';
import type { GatewayCredentials } from './gateway-client.js';
import { OPENFAAS_SWARM_RELEASE as R } from './release.js';
import {
  desiredOpenFaaSStack,
  MANAGED_LABEL,
  SPEC_HASH_LABEL,
  STACK_NAMESPACE_LABEL,
  type DesiredService,
  type DesiredStack,
  type PublishMode,
} from './swarm-stack.js';

/** Where the gateway credentials live on this machine (faas-cli's config file, for one gateway URL). */
export interface CredentialStore {
  load(): Promise<GatewayCredentials | undefined>;
  save(creds: GatewayCredentials): Promise<void>;
}

export interface InstallOptions {
  publish: PublishMode;
  gatewayPort: number;
  credentials: CredentialStore;
  /** Replace the swarm's password (removes and re-creates the services that read it). */
  resetPassword?: boolean;
  onStep?: (message: string) => void;
}

export type ChangeAction = 'created' | 'updated' | 'unchanged' | 'removed';
export interface StackChange {
  kind: 'network' | 'secret' | 'config' | 'service';
  name: string;
  action: ChangeAction;
}

export interface InstallResult {
  architecture: string;
  cpuFamily: string;
  publish: PublishMode;
  gatewayPort: number;
  faasSwarmDockerApiVersion: string;
  /** True when this run made a new password (saved locally before the swarm secret was made). */
  passwordGenerated: boolean;
  changes: StackChange[];
  services: { name: string; image: string }[];
}

/** A fresh gateway password: 32 bytes from the OS CSPRNG, base64url (43 characters). */
export function generatePassword(): string {
  return randomBytes(32).toString('base64url');
}

function dockerMessage(e: unknown): string {
  const err = e as { json?: { message?: string }; reason?: string; message?: string };
  return err.json?.message ?? err.message ?? String(e);
}

/** Compares Docker API versions like "1.30" and "1.44". */
export function compareApiVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am - bm || an - bn;
}

/**
 * The Docker API version faas-swarm is told to speak: its own 1.30, unless the daemon refuses that
 * (Docker 29 accepts nothing below 1.44 unless daemon.json lowers min-api-version, which
 * `pifaas provision` does); then the oldest version the daemon still accepts.
 */
export function faasSwarmApiVersion(daemonMinApiVersion: string): string {
  return compareApiVersions(daemonMinApiVersion, R.faasSwarmDockerApiVersion) > 0 ? daemonMinApiVersion : R.faasSwarmDockerApiVersion;
}

export interface ManagerFacts {
  architecture: string;
  minApiVersion: string;
  nodeId: string;
}

/** Checks that `docker` is a swarm manager and reads what the stack depends on. */
export async function managerFacts(docker: Dockerode): Promise<ManagerFacts> {
  let info: { Architecture?: string; Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean; NodeID?: string } };
  let version: { MinAPIVersion?: string };
  try {
    info = await docker.info();
    version = await docker.version();
  } catch (e) {
    throw new UserError(`cannot talk to the Docker engine: ${dockerMessage(e)}`, 'is Docker running on the manager (`pifaas provision` installs it)?', 1, { cause: e });
  }
  if (info.Swarm?.LocalNodeState !== 'active') {
    throw new UserError('this Docker engine is not part of a swarm', 'form the swarm first with `pifaas provision INVENTORY` (or `docker swarm init` on the manager)');
  }
  if (!info.Swarm.ControlAvailable) {
    throw new UserError('this Docker engine is a swarm worker; OpenFaaS is installed through a manager', 'list the manager under `managers:` in the inventory');
  }
  return { architecture: info.Architecture ?? 'x86_64', minApiVersion: version.MinAPIVersion ?? '1.12', nodeId: info.Swarm.NodeID ?? '' };
}

export async function installOpenFaaS(docker: Dockerode, opts: InstallOptions): Promise<InstallResult> {
  const say = opts.onStep ?? (() => {});
  const facts = await managerFacts(docker);
  const apiVersion = faasSwarmApiVersion(facts.minApiVersion);
  const desired = desiredOpenFaaSStack({
    architecture: facts.architecture,
    publish: opts.publish,
    gatewayPort: opts.gatewayPort,
    faasSwarmDockerApiVersion: apiVersion,
  });
  const changes: StackChange[] = [];

  say(`network ${desired.network.name}`);
  changes.push(await ensureNetwork(docker, desired));

  say('secrets basic-auth-user / basic-auth-password');
  const secrets = await ensureSecrets(docker, desired, opts, changes);

  say('Prometheus and Alertmanager configs');
  const configIds = new Map<string, string>();
  const existingConfigs = await docker.listConfigs({ filters: { label: [`${STACK_NAMESPACE_LABEL}=${desired.namespace}`] } });
  for (const c of desired.configs) {
    const found = existingConfigs.find((x) => x.Spec?.Name === c.name);
    if (found) {
      configIds.set(c.name, found.ID);
      changes.push({ kind: 'config', name: c.name, action: 'unchanged' });
    } else {
      const created = await docker.createConfig({
        Name: c.name,
        Labels: { [STACK_NAMESPACE_LABEL]: desired.namespace, [MANAGED_LABEL]: 'true' },
        Data: Buffer.from(c.data).toString('base64'),
      });
      configIds.set(c.name, created.id);
      changes.push({ kind: 'config', name: c.name, action: 'created' });
    }
  }

  const existing = await docker.listServices({ filters: { label: [`${STACK_NAMESPACE_LABEL}=${desired.namespace}`] } });
  for (const svc of desired.services) {
    say(`service ${svc.name} (${svc.image})`);
    const spec = withIds(svc, secrets, configIds);
    const current = existing.find((s) => s.Spec?.Name === svc.name);
    try {
      if (!current) {
        await docker.createService(spec);
        changes.push({ kind: 'service', name: svc.name, action: 'created' });
      } else {
        const updated = await convergeService(docker, current, spec, svc.specHash);
        changes.push({ kind: 'service', name: svc.name, action: updated ? 'updated' : 'unchanged' });
      }
    } catch (e) {
      throw new UserError(`Docker refused the service ${svc.name}: ${dockerMessage(e)}`, 'run the install again; if it repeats, `docker service inspect ' + svc.name + '` on the manager shows its current state', 1, { cause: e });
    }
  }
  // Services pifaas made under this stack that the release no longer has (a renamed component).
  for (const s of existing) {
    const name = s.Spec?.Name ?? '';
    if (s.Spec?.Labels?.[MANAGED_LABEL] === 'true' && !desired.services.some((d) => d.name === name)) {
      await docker.getService(s.ID).remove();
      changes.push({ kind: 'service', name, action: 'removed' });
    }
  }
  // Configs of earlier releases or settings, no longer referenced by any service spec.
  for (const c of existingConfigs) {
    const name = c.Spec?.Name ?? '';
    if (c.Spec?.Labels?.[MANAGED_LABEL] === 'true' && !desired.configs.some((d) => d.name === name)) {
      try {
        await docker.getConfig(c.ID).remove();
        changes.push({ kind: 'config', name, action: 'removed' });
      } catch {
        // Still referenced by something pifaas does not manage: leave it.
      }
    }
  }

  return {
    architecture: facts.architecture,
    cpuFamily: desired.cpuFamily,
    publish: opts.publish,
    gatewayPort: opts.gatewayPort,
    faasSwarmDockerApiVersion: apiVersion,
    passwordGenerated: secrets.passwordGenerated,
    changes,
    services: desired.services.map((s) => ({ name: s.name, image: s.image })),
  };
}

async function ensureNetwork(docker: Dockerode, desired: DesiredStack): Promise<StackChange> {
  const name = desired.network.name;
  const found = (await docker.listNetworks({ filters: { name: [name] } })).find((n) => n.Name === name);
  if (found) {
    if (found.Driver !== 'overlay' || !found.Attachable || found.Labels?.openfaas !== 'true') {
      throw new UserError(
        `the swarm already has a network ${name} that is not an attachable overlay labelled openfaas=true`,
        `remove it (\`docker network rm ${name}\` on a manager, after removing what uses it) and install again`,
      );
    }
    return { kind: 'network', name, action: 'unchanged' };
  }
  await docker.createNetwork({ Name: name, Driver: 'overlay', Attachable: true, CheckDuplicate: true, Labels: desired.network.labels });
  return { kind: 'network', name, action: 'created' };
}

interface SecretIds {
  user: string;
  password: string;
  passwordGenerated: boolean;
}

async function ensureSecrets(docker: Dockerode, desired: DesiredStack, opts: InstallOptions, changes: StackChange[]): Promise<SecretIds> {
  const names = [desired.secrets.user, desired.secrets.password];
  const list = async () => (await docker.listSecrets({ filters: { name: names } })).filter((s) => names.includes(s.Spec?.Name ?? ''));
  let found = await list();
  const saved = await opts.credentials.load();
  const passwordSecret = () => found.find((s) => s.Spec?.Name === desired.secrets.password);

  if (passwordSecret() && (opts.resetPassword || !saved)) {
    if (!opts.resetPassword) {
      throw new UserError(
        'the swarm already has an OpenFaaS password, and this machine has no copy of it',
        'copy ~/.openfaas/config.yml from the machine that installed OpenFaaS, or give the swarm a new password with `pifaas openfaas install INVENTORY --reset-password` (the gateway, providers and queue worker are re-created)',
      );
    }
    // Secrets in use cannot be removed: take down the services that read them first.
    const users = (await docker.listServices({ filters: { label: [`${STACK_NAMESPACE_LABEL}=${desired.namespace}`] } })).filter((s) =>
      ((s.Spec?.TaskTemplate as Dockerode.ContainerTaskSpec | undefined)?.ContainerSpec?.Secrets ?? []).some((r) => names.includes(r.SecretName ?? '')),
    );
    for (const s of users) {
      await docker.getService(s.ID).remove();
      changes.push({ kind: 'service', name: s.Spec?.Name ?? s.ID, action: 'removed' });
    }
    for (const s of found) {
      await removeSecretWhenFree(docker, s.ID);
      changes.push({ kind: 'secret', name: s.Spec?.Name ?? s.ID, action: 'removed' });
    }
    found = await list();
  }

  let creds = opts.resetPassword ? undefined : saved;
  let passwordGenerated = false;
  if (!creds) {
    creds = { username: R.adminUser, password: generatePassword() };
    passwordGenerated = true;
  }
  if (!passwordSecret()) {
    // Saved first: if the secret creation fails or the run is cut short, the next run reuses it.
    await opts.credentials.save(creds);
  }
  const ensure = async (name: string, value: string): Promise<string> => {
    const s = found.find((x) => x.Spec?.Name === name);
    if (s) {
      changes.push({ kind: 'secret', name, action: 'unchanged' });
      return s.ID;
    }
    const created = await docker.createSecret({ Name: name, Labels: { [MANAGED_LABEL]: 'true' }, Data: Buffer.from(value).toString('base64') });
    changes.push({ kind: 'secret', name, action: 'created' });
    return created.id;
  };
  const user = await ensure(desired.secrets.user, creds.username);
  const password = await ensure(desired.secrets.password, creds.password);
  return { user, password, passwordGenerated };
}

/**
 * Gives an existing service `spec` unless its spec hash label says it has it already. `current` is
 * the service as listed; if another update of it came in between, swarm refuses ours ("update out
 * of sequence") and it is made again on the service as it now is (swarm-update.ts). True when sent.
 */
export async function convergeService(docker: Dockerode, current: Dockerode.Service, spec: Dockerode.ServiceSpec, specHash: string): Promise<boolean> {
  const { sent } = await updateOptimistically({
    current,
    edit: (service) => (service.Spec?.Labels?.[SPEC_HASH_LABEL] === specHash ? undefined : spec),
    write: async (body, version) => {
      await docker.getService(current.ID).update({ _query: { version }, _body: body } as unknown as Dockerode.ServiceSpec);
    },
    reread: async () => (await docker.getService(current.ID).inspect()) as Dockerode.Service,
  });
  return sent !== undefined;
}

/** Removing a service lets go of its secrets only once its tasks are gone: retry for a while. */
async function removeSecretWhenFree(docker: Dockerode, id: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await docker.getSecret(id).remove();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new UserError(`cannot remove the old secret: ${dockerMessage(e)}`, 'wait until `docker service ls` shows no func_ service using it and run the install again');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** The spec to send: secret and config IDs filled in by name. */
function withIds(svc: DesiredService, secrets: SecretIds, configIds: Map<string, string>): Dockerode.ServiceSpec {
  const spec = structuredClone(svc.spec);
  const cs = spec.TaskTemplate.ContainerSpec;
  cs.Secrets = cs.Secrets?.map((s) => ({ ...s, SecretID: s.SecretName === R.secrets.user ? secrets.user : secrets.password }));
  cs.Configs = cs.Configs?.map((c) => ({ ...c, ConfigID: configIds.get(c.ConfigName ?? '') }));
  return spec;
}
