// Why: installing OpenFaaS and explaining a function that never starts both need a swarm manager's
// Docker Engine API. pifaas reaches it the same way everywhere: through the inventory's first manager
// over SSH (the Docker socket forwarded on the SSH connection, host keys checked), or, on the manager
// itself or in tests, through a local unix socket (--docker-host unix:///path).
import Docker from 'dockerode';
import { loadInventory, type Inventory, type InventoryHost } from '../inventory/inventory.js';
import { dockerFor } from '../operator/docker-client.js';
import type { Operator } from '../operator/operator.js';
import { InventoryConnector } from '../ssh/inventory-connect.js';
import { UserError } from '../user-error.js';
import { OPENFAAS_SWARM_RELEASE } from './release.js';
import type { PublishMode } from './swarm-stack.js';

export interface ManagerDocker {
  docker: Docker;
  /** Where the gateway of this swarm is reached: the manager's address. */
  gatewayHost: string;
  /** What pifaas is talking to, for messages ("pi1 (192.168.1.11) over SSH"). */
  description: string;
  /** Inventory settings for the OpenFaaS stack, when an inventory was given. */
  settings: { publish?: PublishMode; gatewayPort?: number };
  close(): Promise<void>;
}

export interface ManagerDockerOptions {
  inventory?: string;
  /** unix:///path/docker.sock or tcp://host:port (the manager's own Docker, e.g. when run on it). */
  dockerHost?: string;
  acceptNewHostKeys?: boolean;
  /** OpenSSH client config to read (default ~/.ssh/config). */
  sshConfigFile?: string;
}

/** A dockerode client from a DOCKER_HOST-style URL; ssh:// is refused (use an inventory: host keys are checked there). */
export function dockerFromUrl(url: string): { docker: Docker; host: string } {
  if (url.startsWith('unix://')) return { docker: new Docker({ socketPath: url.slice('unix://'.length) }), host: '127.0.0.1' };
  const m = /^tcp:\/\/([^:/]+)(?::(\d+))?\/?$/.exec(url);
  if (m) return { docker: new Docker({ host: m[1], port: Number(m[2] ?? 2375), protocol: 'http' }), host: m[1]! };
  throw new UserError(
    `--docker-host ${url} is not a Docker endpoint pifaas uses`,
    'give unix:///var/run/docker.sock (on the manager itself) or an inventory (-i inventory.yaml: SSH with host key checks)',
  );
}

/** The manager pifaas talks to in an inventory: the first host of the `managers` group. */
export function firstManager(inv: Inventory): InventoryHost {
  const m = inv.managers[0];
  if (!m) throw new UserError(`${inv.file} lists no manager`, 'put the swarm manager under all.children.managers.hosts');
  return m;
}

/**
 * Gateway URL of a swarm described by an inventory: the manager's address and the gateway port. An
 * inventory may name its hosts by their SSH config aliases (Host pi1 / HostName 192.168.1.11), as
 * Ansible allows: the URL then takes the HostName SSH connects to.
 */
export function inventoryGatewayUrl(inv: Inventory, sshConfigFile?: string): string {
  const port = inv.settings.openfaas_gateway_port ?? OPENFAAS_SWARM_RELEASE.defaultGatewayPort;
  return `http://${new InventoryConnector(inv, { sshConfigFile }).targetFor(firstManager(inv)).hostname}:${port}`;
}

export async function openManagerDocker(opts: ManagerDockerOptions): Promise<ManagerDocker | undefined> {
  if (opts.dockerHost) {
    const { docker, host } = dockerFromUrl(opts.dockerHost);
    return { docker, gatewayHost: host, description: opts.dockerHost, settings: {}, close: async () => {} };
  }
  if (!opts.inventory) return undefined;
  const inv = await loadInventory(opts.inventory);
  const manager = firstManager(inv);
  const connector = new InventoryConnector(inv, {
    acceptNewHostKeys: opts.acceptNewHostKeys,
    askHostKeys: Boolean(process.stdin.isTTY && process.stderr.isTTY),
    sshConfigFile: opts.sshConfigFile,
  });
  const operator: Operator = await connector.connect(manager);
  return {
    docker: dockerFor(operator),
    gatewayHost: connector.targetFor(manager).hostname,
    description: `${manager.name} (${manager.address})`,
    settings: { publish: inv.settings.openfaas_publish, gatewayPort: inv.settings.openfaas_gateway_port },
    close: () => operator.close(),
  };
}
