// Why: forms (or converges) one Docker Swarm from the inventory through the Engine API of each
// node (dockerode over the SSH-forwarded socket): init on the first manager with the inventory
// address, join the others with tokens read from the API, promote managers, label nodes. Every
// step compares first, so a second run changes nothing; a node in a different swarm is refused
// unless forced; swarm nodes that are not in the inventory are left alone unless pruned.
import type Docker from 'dockerode';
import type { InventoryHost } from '../inventory/inventory.js';
import type { Operator } from '../operator/operator.js';
import { UserError } from '../user-error.js';
import type { NodeFacts } from './node-facts.js';
import { joinSwarm, leaveSwarm, swarmInfo, type SwarmInfo } from './swarm-membership.js';
import { updateOptimistically } from './swarm-update.js';

export const SWARM_PORT = 2377;
export const LABEL_PREFIX = 'pifaas.';

/** A node that finished its per-node steps and can take part in the swarm. */
export interface SwarmMember {
  host: InventoryHost;
  operator: Operator;
  docker: Docker;
  facts: NodeFacts;
  /** The address the node advertises to the swarm. */
  advertiseAddr: string;
}

export interface SwarmOptions {
  /** Make nodes that are in another swarm leave it and join this one. */
  force?: boolean;
  /** Remove swarm nodes that are not in the inventory. */
  prune?: boolean;
  /** Progress per node. */
  report?: (node: string, message: string) => void;
  /**
   * Every host of the inventory, also those that failed before the swarm step: their swarm entries
   * (found by the pifaas.name label or address) are never taken for strangers.
   */
  inventoryHosts?: InventoryHost[];
  /** How long to wait for every node to be Ready. Default 90 s. */
  readyTimeoutMs?: number;
}

export interface SwarmNodeOutcome {
  changes: string[];
  error?: UserError | Error;
  nodeId?: string;
}

export interface StrangerNode {
  id: string;
  hostname: string;
  role: string;
  state: string;
  removed: boolean;
}

export interface SwarmOutcome {
  clusterId?: string;
  /** The manager every other swarm operation went through. */
  leader?: SwarmMember;
  nodes: Map<string, SwarmNodeOutcome>;
  /** Swarm nodes that are not in the inventory. */
  strangers: StrangerNode[];
}

export interface NodeSpecDoc {
  ID: string;
  Version: { Index: number };
  Spec: { Role?: string; Availability?: string; Labels?: Record<string, string>; Name?: string };
  Description?: { Hostname?: string; Platform?: { Architecture?: string }; Engine?: { EngineVersion?: string } };
  Status?: { State?: string; Addr?: string };
  ManagerStatus?: { Leader?: boolean; Reachability?: string; Addr?: string };
}

/** A new spec for a swarm node and what it changes. */
export interface NodeSpecChange {
  spec: NodeSpecDoc['Spec'];
  changes: string[];
}

/** The change wanted of a node as it is, or undefined when it is as wanted. */
export type NodeSpecEdit = (node: NodeSpecDoc) => Promise<NodeSpecChange | undefined> | NodeSpecChange | undefined;

/**
 * Changes a swarm node's spec, starting from `node` as last read; a lost race with another update of
 * the node (a worker that has just joined: the manager is still recording it) is made again on the
 * node as it now is (swarm-update.ts), up to `attempts` times. Returns the node the edit was last made
 * on, and what changed.
 */
export async function editNodeSpec(docker: Docker, node: NodeSpecDoc, edit: NodeSpecEdit, attempts = 5): Promise<{ node: NodeSpecDoc; changes: string[] }> {
  const { object, sent } = await updateOptimistically({
    current: node,
    edit,
    write: async (wanted, version) => {
      await docker.getNode(node.ID).update({ _query: { version }, _body: wanted.spec } as never);
    },
    reread: async () => (await docker.getNode(node.ID).inspect()) as NodeSpecDoc,
    attempts,
  });
  return { node: object, changes: sent?.changes ?? [] };
}

/** Removes a swarm node entry (a manager is demoted first, as swarm requires). */
async function removeSwarmNode(docker: Docker, n: NodeSpecDoc): Promise<void> {
  await editNodeSpec(docker, n, (node) => (node.Spec.Role === 'manager' ? { spec: { ...node.Spec, Role: 'worker' }, changes: ['demoted to worker'] } : undefined));
  await docker.getNode(n.ID).remove({ force: true });
}

/** What pifaas wants of one of its nodes in the swarm: its role if a manager, and its labels. */
function memberSpec(node: NodeSpecDoc, m: SwarmMember): NodeSpecChange | undefined {
  const spec = { ...node.Spec };
  const labels = { ...(spec.Labels ?? {}) };
  const changes: string[] = [];
  if (m.host.role === 'manager' && spec.Role !== 'manager') {
    spec.Role = 'manager';
    changes.push('promoted to manager');
  }
  const labelChanges = Object.entries(desiredLabels(m)).filter(([k, v]) => labels[k] !== v);
  if (labelChanges.length) {
    spec.Labels = { ...labels, ...Object.fromEntries(labelChanges) };
    changes.push(`labelled ${labelChanges.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  }
  return changes.length ? { spec, changes } : undefined;
}

/** The labels pifaas puts on a node (plus pifaas_node_labels from the inventory). */
export function desiredLabels(member: Pick<SwarmMember, 'host' | 'facts'>): Record<string, string> {
  return {
    [`${LABEL_PREFIX}name`]: member.host.name,
    [`${LABEL_PREFIX}arch`]: member.facts.arch,
    ...(member.facts.piModel ? { [`${LABEL_PREFIX}pi-model`]: member.facts.piModel } : {}),
    ...(member.host.settings.node_labels ?? {}),
  };
}

export async function formSwarm(members: SwarmMember[], options: SwarmOptions = {}): Promise<SwarmOutcome> {
  const report = options.report ?? (() => {});
  const outcome: SwarmOutcome = { nodes: new Map(members.map((m) => [m.host.name, { changes: [] }])), strangers: [] };
  const out = (m: SwarmMember) => outcome.nodes.get(m.host.name) as SwarmNodeOutcome;
  const fail = (m: SwarmMember, e: unknown) => {
    out(m).error = e instanceof Error ? e : new Error(String(e));
  };

  const infos = new Map<string, SwarmInfo>();
  await Promise.all(
    members.map(async (m) => {
      try {
        infos.set(m.host.name, await swarmInfo(m.docker));
      } catch (e) {
        fail(m, e);
      }
    }),
  );
  const alive = members.filter((m) => !out(m).error);
  const managers = alive.filter((m) => m.host.role === 'manager');
  if (managers.length === 0) {
    const err = new UserError('no manager of the inventory is reachable, so the swarm cannot be formed or joined', 'fix the manager nodes listed above and re-run');
    for (const m of alive) fail(m, err);
    return outcome;
  }

  // 1. The swarm: the one an inventory manager already leads, or a new one on the first manager.
  let leader = managers.find((m) => {
    const s = infos.get(m.host.name);
    return s?.LocalNodeState === 'active' && s.ControlAvailable;
  });
  if (!leader) {
    const first = managers[0] as SwarmMember;
    const s = infos.get(first.host.name) ?? {};
    if (s.LocalNodeState && s.LocalNodeState !== 'inactive') {
      if (!options.force) {
        fail(
          first,
          new UserError(
            `${first.host.name} is already part of another swarm (as a worker, state ${s.LocalNodeState}), so pifaas will not create one on it`,
            'run `docker swarm leave` on it, or re-run with --force to make it leave that swarm',
          ),
        );
        for (const m of alive) if (m !== first) fail(m, new UserError(`the swarm could not be formed: manager ${first.host.name} failed`));
        return outcome;
      }
      report(first.host.name, 'leaving its old swarm (--force)');
      try {
        await leaveSwarm(first.docker, first.host.name);
      } catch (e) {
        fail(first, e);
        for (const m of alive) if (m !== first) fail(m, new UserError(`the swarm could not be formed: manager ${first.host.name} failed`));
        return outcome;
      }
      out(first).changes.push('left its old swarm');
    }
    report(first.host.name, `swarm init --advertise-addr ${first.advertiseAddr}`);
    try {
      await first.docker.swarmInit({ ListenAddr: `0.0.0.0:${SWARM_PORT}`, AdvertiseAddr: first.advertiseAddr, ForceNewCluster: false });
    } catch (e) {
      fail(first, e);
      for (const m of alive) if (m !== first) fail(m, new UserError(`the swarm could not be formed: swarm init on ${first.host.name} failed`));
      return outcome;
    }
    out(first).changes.push(`initialised the swarm (advertising ${first.advertiseAddr})`);
    infos.set(first.host.name, await swarmInfo(first.docker));
    leader = first;
  }
  outcome.leader = leader;
  const leaderInfo = infos.get(leader.host.name) ?? {};
  outcome.clusterId = leaderInfo.Cluster?.ID;
  out(leader).nodeId = leaderInfo.NodeID;
  const swarm = (await leader.docker.swarmInspect()) as { JoinTokens: { Manager: string; Worker: string } };
  const remote = `${leader.advertiseAddr}:${SWARM_PORT}`;
  const listIds = async () => new Set(((await leader.docker.listNodes()) as NodeSpecDoc[]).map((n) => n.ID));
  let memberIds = await listIds();

  // 2. Everyone else: already a member, in another swarm, or joining.
  const join = async (m: SwarmMember) => {
    const s = infos.get(m.host.name) ?? {};
    const inOurs = s.NodeID !== undefined && s.LocalNodeState === 'active' && memberIds.has(s.NodeID);
    if (inOurs) {
      out(m).nodeId = s.NodeID;
      return;
    }
    if (s.LocalNodeState && s.LocalNodeState !== 'inactive') {
      if (!options.force) {
        throw new UserError(
          `${m.host.name} is already part of a different swarm (state ${s.LocalNodeState}, node ID ${s.NodeID ?? '?'}), not the one ${leader.host.name} manages`,
          `run \`docker swarm leave --force\` on ${m.host.name}, or re-run with --force to make it leave and join this swarm`,
        );
      }
      report(m.host.name, 'leaving its old swarm (--force)');
      await leaveSwarm(m.docker, m.host.name);
      out(m).changes.push('left its old swarm');
    }
    const role = m.host.role;
    report(m.host.name, `joining as ${role} via ${remote}`);
    const after = await joinSwarm(m.docker, m.host.name, {
      ListenAddr: `0.0.0.0:${SWARM_PORT}`,
      AdvertiseAddr: m.advertiseAddr,
      RemoteAddrs: [remote],
      JoinToken: role === 'manager' ? swarm.JoinTokens.Manager : swarm.JoinTokens.Worker,
    });
    out(m).nodeId = after.NodeID;
    out(m).changes.push(`joined the swarm as ${role}`);
  };
  // Managers one at a time (raft membership changes), then workers in parallel.
  for (const m of alive.filter((x) => x !== leader && x.host.role === 'manager')) {
    await join(m).catch((e: unknown) => fail(m, e));
  }
  await Promise.all(alive.filter((x) => x.host.role === 'worker').map((m) => join(m).catch((e: unknown) => fail(m, e))));
  memberIds = await listIds();

  // 3. Roles, labels, and stale entries of our own nodes (left "down" after a node re-joined).
  let swarmNodes = (await leader.docker.listNodes()) as NodeSpecDoc[];
  const ours = new Map<string, SwarmMember>();
  for (const m of alive) {
    const id = out(m).nodeId;
    if (!out(m).error && id) ours.set(id, m);
  }
  for (const n of swarmNodes) {
    const m = ours.get(n.ID);
    if (!m) continue;
    try {
      const { node, changes } = await editNodeSpec(leader.docker, n, (current) => memberSpec(current, m));
      if (changes.length) {
        report(m.host.name, changes.join('; '));
        out(m).changes.push(...changes);
      }
      if (m.host.role === 'worker' && node.Spec.Role === 'manager') {
        out(m).changes.push('note: a manager in the swarm but a worker in the inventory; left as a manager');
      }
    } catch (e) {
      fail(m, e);
    }
  }
  swarmNodes = (await leader.docker.listNodes()) as NodeSpecDoc[];
  const hostnameOf = (n: NodeSpecDoc) => n.Description?.Hostname ?? '';
  // An entry with the hostname of one of our nodes' current entries but another ID is an old
  // incarnation of that machine (it left and joined again): ours, and removed. Matched on the
  // address too while the manager has not yet noticed it is gone, on the hostname alone once down.
  const ourEntries = swarmNodes.filter((n) => ours.has(n.ID) && hostnameOf(n));
  for (const n of swarmNodes) {
    if (ours.has(n.ID)) continue;
    const twin = ourEntries.find((o) => hostnameOf(o) === hostnameOf(n) && (n.Status?.State === 'down' || o.Status?.Addr === n.Status?.Addr));
    const sameHost = twin ? ours.get(twin.ID) : undefined;
    if (sameHost) {
      try {
        await removeSwarmNode(leader.docker, n);
        out(sameHost).changes.push(`removed its stale swarm entry ${n.ID.slice(0, 12)}`);
      } catch (e) {
        report(sameHost.host.name, `could not remove its stale swarm entry ${n.ID.slice(0, 12)}: ${(e as Error).message}`);
      }
      continue;
    }
    const inventoryNames = new Set((options.inventoryHosts ?? members.map((m) => m.host)).map((h) => h.name));
    const inventoryAddrs = new Set((options.inventoryHosts ?? members.map((m) => m.host)).map((h) => h.settings.advertise_addr ?? h.address));
    if (inventoryNames.has(n.Spec.Labels?.[`${LABEL_PREFIX}name`] ?? '') || inventoryAddrs.has(n.Status?.Addr ?? '')) continue;
    const stranger: StrangerNode = { id: n.ID, hostname: hostnameOf(n), role: n.Spec.Role ?? '?', state: n.Status?.State ?? '?', removed: false };
    if (options.prune) {
      try {
        await removeSwarmNode(leader.docker, n);
        stranger.removed = true;
      } catch (e) {
        report(leader.host.name, `could not remove ${stranger.hostname}: ${(e as Error).message}`);
      }
    }
    outcome.strangers.push(stranger);
  }

  // 4. Wait until every node of ours is Ready.
  const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
  for (;;) {
    const list = (await leader.docker.listNodes()) as NodeSpecDoc[];
    const notReady = [...ours.entries()].filter(([id]) => list.find((n) => n.ID === id)?.Status?.State !== 'ready');
    if (notReady.length === 0) break;
    if (Date.now() > deadline) {
      for (const [, m] of notReady) fail(m, new UserError(`${m.host.name} joined the swarm but is not Ready`, `check dockerd on ${m.host.name} and that port ${SWARM_PORT}/tcp, 7946/tcp+udp and 4789/udp are open between the nodes`));
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return outcome;
}
