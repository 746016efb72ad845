// Why: `pifaas status` answers "is my cluster healthy?" from the swarm's own view (through the
// first reachable manager's Docker API over SSH), matched against the inventory so hosts that
// never joined, or swarm nodes nobody listed, stand out.
import type { Inventory } from '../inventory/inventory.js';
import { dockerFor } from '../operator/docker-client.js';
import type { InventoryConnector } from '../ssh/inventory-connect.js';
import { isUserError, UserError } from '../user-error.js';
import { LABEL_PREFIX } from './swarm-cluster.js';

export interface StatusNode {
  /** Inventory name, or null for a swarm node that is not in the inventory. */
  name: string | null;
  hostname: string | null;
  address: string | null;
  role: string;
  /** leader / reachable / unreachable for managers. */
  managerStatus: string | null;
  arch: string | null;
  piModel: string | null;
  /** ready / down / unknown / disconnected, or "not in swarm". */
  state: string;
  availability: string | null;
  dockerVersion: string | null;
  labels: Record<string, string>;
  inInventory: boolean;
}

export interface ClusterStatus {
  inventory: string;
  /** The manager queried. */
  via: string;
  clusterId: string | null;
  nodes: StatusNode[];
  /** Managers that could not be used, with why. */
  unreachable: { name: string; error: string }[];
}

interface SwarmNodeDoc {
  ID: string;
  Spec: { Role?: string; Availability?: string; Labels?: Record<string, string> };
  Description?: { Hostname?: string; Platform?: { Architecture?: string }; Engine?: { EngineVersion?: string } };
  Status?: { State?: string; Addr?: string };
  ManagerStatus?: { Leader?: boolean; Reachability?: string };
}

export async function clusterStatus(inventory: Inventory, connector: InventoryConnector): Promise<ClusterStatus> {
  const unreachable: ClusterStatus['unreachable'] = [];
  const hints = new Set<string>();
  for (const manager of inventory.managers) {
    let op;
    try {
      op = await connector.connect(manager);
      const docker = dockerFor(op);
      const info = (await docker.info()) as { Swarm?: { ControlAvailable?: boolean; LocalNodeState?: string; Cluster?: { ID?: string } } };
      if (!info.Swarm?.ControlAvailable) {
        unreachable.push({ name: manager.name, error: `not a swarm manager (swarm state: ${info.Swarm?.LocalNodeState ?? 'unknown'})` });
        continue;
      }
      const list = (await docker.listNodes()) as SwarmNodeDoc[];
      const seen = new Set<string>();
      const nodes: StatusNode[] = list.map((n) => {
        const host = inventory.hosts.find(
          (h) => h.name === n.Spec.Labels?.[`${LABEL_PREFIX}name`] || (h.settings.advertise_addr ?? h.address) === n.Status?.Addr,
        );
        if (host) seen.add(host.name);
        return {
          name: host?.name ?? null,
          hostname: n.Description?.Hostname ?? null,
          address: n.Status?.Addr ?? null,
          role: n.Spec.Role ?? 'unknown',
          managerStatus: n.ManagerStatus ? (n.ManagerStatus.Leader ? 'leader' : (n.ManagerStatus.Reachability ?? null)) : null,
          arch: n.Description?.Platform?.Architecture ?? null,
          piModel: n.Spec.Labels?.[`${LABEL_PREFIX}pi-model`] ?? null,
          state: n.Status?.State ?? 'unknown',
          availability: n.Spec.Availability ?? null,
          dockerVersion: n.Description?.Engine?.EngineVersion ?? null,
          labels: n.Spec.Labels ?? {},
          inInventory: Boolean(host),
        };
      });
      for (const h of inventory.hosts) {
        if (seen.has(h.name)) continue;
        nodes.push({
          name: h.name,
          hostname: null,
          address: h.address,
          role: h.role,
          managerStatus: null,
          arch: null,
          piModel: null,
          state: 'not in swarm',
          availability: null,
          dockerVersion: null,
          labels: {},
          inInventory: true,
        });
      }
      const order = new Map(inventory.hosts.map((h, i) => [h.name, i]));
      nodes.sort((a, b) => (order.get(a.name ?? '') ?? 1e9) - (order.get(b.name ?? '') ?? 1e9));
      return { inventory: inventory.file, via: manager.name, clusterId: info.Swarm.Cluster?.ID ?? null, nodes, unreachable };
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      // Connection errors already start with the host's name.
      unreachable.push({ name: manager.name, error: message.startsWith(`${manager.name}: `) ? message.slice(manager.name.length + 2) : message });
      // A refused host key or login says what to do about it: that, not "provision first", is the next step.
      if (isUserError(e) && e.hint) hints.add(e.hint);
    } finally {
      await op?.close();
    }
  }
  const provisionFirst = 'run `pifaas provision` on this inventory first, or check that the managers are up';
  throw new UserError(
    `no manager of ${inventory.file} answered as a swarm manager:\n${unreachable.map((u) => `  ${u.name}: ${u.error}`).join('\n')}`,
    hints.size > 0 ? [...hints].join('; ') : provisionFirst,
  );
}
