// Why: the OpenFaaS stack is described here as the Docker objects `docker stack deploy func` would
// have made from OpenFaaS's last Swarm compose file: one attachable overlay network for functions,
// two external secrets, three configs and seven services, with the stack labels that let
// `docker stack ps func` list them. It is plain data (no Docker calls), derived from release.ts and
// the install options, so tests can read it and the installer can compare it with what a swarm has.
import { createHash } from 'node:crypto';
import type Dockerode from 'dockerode';
import { alertmanagerConfig, prometheusAlertRules, prometheusConfig } from './monitoring-config.js';
import { cpuFamilyOf, goDuration, imageFor, OPENFAAS_SWARM_RELEASE as R, type CpuFamily, type OpenFaaSComponent, type PinnedImage } from './release.js';

export const STACK_NAMESPACE_LABEL = 'com.docker.stack.namespace';
export const STACK_IMAGE_LABEL = 'com.docker.stack.image';
/** Hash of the spec pifaas asked for: equal hash, nothing to update. */
export const SPEC_HASH_LABEL = 'com.pifaas.spec-hash';
/** Marks objects pifaas manages (secrets are outside the stack namespace, as upstream made them external). */
export const MANAGED_LABEL = 'com.pifaas.managed';

export type PublishMode = 'ingress' | 'host';

export interface StackOptions {
  /** The manager's architecture as Docker reports it (x86_64, aarch64, armv7l). */
  architecture: string;
  /** ingress: the routing mesh (needs IPVS, as Raspberry Pi OS has); host: each gateway node's own port. */
  publish: PublishMode;
  gatewayPort: number;
  /** API version faas-swarm's Docker client uses; raised when the daemon refuses 1.30 (Docker 29). */
  faasSwarmDockerApiVersion?: string;
}

export interface DesiredConfig {
  /** The key services refer to, e.g. prometheus_config. */
  key: string;
  /** func_<key>_<content hash>: a changed file is a new config, as Swarm configs are immutable. */
  name: string;
  data: string;
}

export interface DesiredService {
  /** Name inside the stack (gateway), also its DNS alias on the functions network. */
  shortName: string;
  /** Swarm service name (func_gateway). */
  name: string;
  component: OpenFaaSComponent;
  image: string;
  /**
   * The spec with secrets, configs and the network given by name; the installer fills in their IDs.
   * Its hash is stored in the SPEC_HASH_LABEL label.
   */
  spec: Dockerode.ServiceSpec & { TaskTemplate: Dockerode.ContainerTaskSpec & { ContainerSpec: Dockerode.ContainerSpec } };
  specHash: string;
}

export interface DesiredStack {
  namespace: string;
  cpuFamily: CpuFamily;
  architecture: string;
  network: { name: string; labels: Record<string, string> };
  secrets: { user: string; password: string };
  configs: DesiredConfig[];
  services: DesiredService[];
}

const SECRET_MOUNT_PATH = '/run/secrets/';

function configName(ns: string, key: string, data: string): string {
  return `${ns}_${key}_${createHash('sha256').update(data).digest('hex').slice(0, 10)}`;
}

export function hashSpec(spec: unknown): string {
  return createHash('sha256').update(stableJson(spec)).digest('hex').slice(0, 16);
}

/** JSON with object keys sorted, so equal specs hash equally whatever order they were built in. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const MB = 1024 * 1024;
const restartOnFailure: Dockerode.TaskRestartPolicy = { Condition: 'on-failure', Delay: 5e9, MaxAttempts: 20, Window: 380e9 };

interface ServiceDraft {
  shortName: string;
  component: OpenFaaSComponent;
  env?: Record<string, string>;
  args?: string[];
  managerOnly?: boolean;
  secrets?: string[];
  configs?: { key: string; target: string }[];
  mounts?: Dockerode.MountSettings[];
  limitMb?: number;
  reserveMb?: number;
  restart?: boolean;
  ports?: { target: number; published: number }[];
}

/** The OpenFaaS stack for one swarm, as Docker objects. */
export function desiredOpenFaaSStack(opts: StackOptions): DesiredStack {
  const ns = R.stackNamespace;
  const family = cpuFamilyOf(opts.architecture);
  const t = R.timeouts;
  const basicAuth = { basic_auth: 'true', secret_mount_path: SECRET_MOUNT_PATH };
  const bothSecrets = [R.secrets.user, R.secrets.password];

  const configs: DesiredConfig[] = [
    { key: 'prometheus_config', data: prometheusConfig() },
    { key: 'prometheus_rules', data: prometheusAlertRules() },
    { key: 'alertmanager_config', data: alertmanagerConfig() },
  ].map((c) => ({ ...c, name: configName(ns, c.key, c.data) }));

  const drafts: ServiceDraft[] = [
    {
      shortName: 'gateway',
      component: 'gateway',
      env: {
        functions_provider_url: 'http://faas-swarm:8080/',
        read_timeout: goDuration(t.gatewayReadWrite),
        write_timeout: goDuration(t.gatewayReadWrite),
        upstream_timeout: goDuration(t.gatewayUpstream),
        dnsrr: 'true',
        faas_nats_address: 'nats',
        faas_nats_port: '4222',
        direct_functions: 'true',
        direct_functions_suffix: '',
        scale_from_zero: 'true',
        max_idle_conns: '1024',
        max_idle_conns_per_host: '1024',
        auth_proxy_url: 'http://basic-auth-plugin:8080/validate',
        auth_proxy_pass_body: 'false',
        ...basicAuth,
      },
      secrets: bothSecrets,
      reserveMb: 100,
      restart: true,
      ports: [{ target: 8080, published: opts.gatewayPort }],
    },
    {
      shortName: 'basic-auth-plugin',
      component: 'basicAuthPlugin',
      env: { secret_mount_path: SECRET_MOUNT_PATH, user_filename: R.secrets.user, pass_filename: R.secrets.password },
      managerOnly: true,
      secrets: bothSecrets,
      reserveMb: 50,
      restart: true,
    },
    {
      shortName: 'faas-swarm',
      component: 'faasSwarm',
      env: {
        read_timeout: goDuration(t.gatewayReadWrite),
        write_timeout: goDuration(t.gatewayReadWrite),
        DOCKER_API_VERSION: opts.faasSwarmDockerApiVersion ?? R.faasSwarmDockerApiVersion,
        ...basicAuth,
      },
      managerOnly: true,
      secrets: bothSecrets,
      mounts: [{ Type: 'bind', Source: '/var/run/docker.sock', Target: '/var/run/docker.sock' }],
      reserveMb: 100,
      restart: true,
    },
    {
      shortName: 'nats',
      component: 'nats',
      args: ['--store', 'memory', '--cluster_id', 'faas-cluster'],
      limitMb: 125,
      reserveMb: 50,
    },
    {
      shortName: 'queue-worker',
      component: 'queueWorker',
      env: {
        max_inflight: '1',
        ack_wait: goDuration(t.queueAckWait),
        gateway_invoke: 'true',
        faas_gateway_address: 'gateway',
        ...basicAuth,
      },
      secrets: bothSecrets,
      limitMb: 50,
      reserveMb: 20,
      restart: true,
    },
    {
      shortName: 'prometheus',
      component: 'prometheus',
      env: { no_proxy: 'gateway' },
      args: ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'],
      configs: [
        { key: 'prometheus_config', target: '/etc/prometheus/prometheus.yml' },
        { key: 'prometheus_rules', target: '/etc/prometheus/alert.rules.yml' },
      ],
      managerOnly: true,
      limitMb: 500,
      reserveMb: 200,
    },
    {
      shortName: 'alertmanager',
      component: 'alertmanager',
      env: { no_proxy: 'gateway' },
      args: ['--config.file=/alertmanager.yml', '--storage.path=/alertmanager'],
      configs: [{ key: 'alertmanager_config', target: '/alertmanager.yml' }],
      managerOnly: true,
      secrets: [R.secrets.password],
      limitMb: 50,
      reserveMb: 20,
    },
  ];

  const networkName = `${ns}_${R.functionsNetwork}`;
  const services = drafts.map((d): DesiredService => {
    const image = imageFor(d.component, family);
    const constraints = ['node.platform.os == linux'];
    // With host publishing the gateway's port opens only where its task runs: keep it on a manager,
    // whose address is the gateway URL pifaas saves.
    if (d.managerOnly || (d.ports && opts.publish === 'host')) constraints.unshift('node.role == manager');
    // A per-arch tag runs only on that architecture: keep those tasks off other nodes of a mixed cluster.
    if ((R.images[d.component] as PinnedImage).perArchTags) constraints.push(`node.platform.arch == ${opts.architecture}`);
    const byKey = new Map(configs.map((c) => [c.key, c]));
    const spec: DesiredService['spec'] = {
      Name: `${ns}_${d.shortName}`,
      Labels: { [STACK_NAMESPACE_LABEL]: ns, [STACK_IMAGE_LABEL]: image, [MANAGED_LABEL]: 'true' },
      TaskTemplate: {
        ContainerSpec: {
          Image: image,
          Labels: { [STACK_NAMESPACE_LABEL]: ns },
          ...(d.args ? { Args: d.args } : {}),
          ...(d.env ? { Env: Object.entries(d.env).map(([k, v]) => `${k}=${v}`) } : {}),
          ...(d.mounts ? { Mounts: d.mounts } : {}),
          ...(d.secrets
            ? { Secrets: d.secrets.map((s) => ({ SecretName: s, File: { Name: s, UID: '0', GID: '0', Mode: 0o444 } })) }
            : {}),
          ...(d.configs
            ? {
                Configs: d.configs.map((c) => ({
                  ConfigName: byKey.get(c.key)!.name,
                  File: { Name: c.target, UID: '0', GID: '0', Mode: 0o444 },
                })),
              }
            : {}),
        },
        Resources: {
          ...(d.limitMb ? { Limits: { MemoryBytes: d.limitMb * MB } } : {}),
          ...(d.reserveMb ? { Reservations: { MemoryBytes: d.reserveMb * MB } } : {}),
        },
        ...(d.restart ? { RestartPolicy: restartOnFailure } : {}),
        Placement: { Constraints: constraints },
        Networks: [{ Target: networkName, Aliases: [d.shortName] }],
      },
      Mode: { Replicated: { Replicas: 1 } },
      EndpointSpec: {
        // Without IPVS (host publishing), VIP load balancing does not work either: use DNS round robin.
        Mode: opts.publish === 'host' ? 'dnsrr' : 'vip',
        ...(d.ports
          ? { Ports: d.ports.map((p) => ({ Protocol: 'tcp' as const, TargetPort: p.target, PublishedPort: p.published, PublishMode: opts.publish })) }
          : {}),
      },
    };
    const specHash = hashSpec(spec);
    spec.Labels = { ...spec.Labels, [SPEC_HASH_LABEL]: specHash };
    return { shortName: d.shortName, name: spec.Name!, component: d.component, image, spec, specHash };
  });

  return {
    namespace: ns,
    cpuFamily: family,
    architecture: opts.architecture,
    network: { name: networkName, labels: { [STACK_NAMESPACE_LABEL]: ns, openfaas: 'true', [MANAGED_LABEL]: 'true' } },
    secrets: { user: R.secrets.user, password: R.secrets.password },
    configs,
    services,
  };
}
