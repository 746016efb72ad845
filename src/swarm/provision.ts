// Why: `pifaas provision` in one place: every node in parallel (connect, facts, Docker, daemon.json,
// docker group, memory cgroup), then one swarm from the nodes that made it, then any cluster-wide
// steps other areas add (OpenFaaS). Progress is a listr2 task list, one line per node and step;
// the result is data (per node: changed / unchanged / failed, with what changed) for --json.
import type Docker from 'dockerode';
import { Listr, type ListrTask } from 'listr2';
import type { Inventory, InventoryHost } from '../inventory/inventory.js';
import { dockerFor } from '../operator/docker-client.js';
import { CommandFailedError, DEFAULT_DOCKER_SOCKET, type Operator } from '../operator/operator.js';
import type { InventoryConnector } from '../ssh/inventory-connect.js';
import { ConnectFailedError } from '../ssh/ssh-connection.js';
import { isUserError, UserError } from '../user-error.js';
import { CGROUP_FLAGS } from '../burn/cmdline.js';
import {
  dockerRunning,
  enableAndStartDocker,
  ensureDaemonConfig,
  ensureDockerGroup,
  ensureMemoryCgroup,
  installDocker,
  restartDocker,
  type DockerInstallMethod,
} from './docker-setup.js';
import { gatherFacts, type NodeFacts } from './node-facts.js';
import { formSwarm, type StrangerNode, type SwarmMember } from './swarm-cluster.js';

/** What a cluster-wide step (run after the swarm is formed) gets to work with. */
export interface ClusterContext {
  inventory: Inventory;
  /** The manager the swarm was formed through (its operator and dockerode client are open). */
  leader: SwarmMember;
  /** Every node that is in the swarm after this run. */
  members: SwarmMember[];
  /** Progress line for this step. */
  report(message: string): void;
  /** Where this machine reaches a host: its inventory address after the SSH config (HostName of an alias). */
  hostAddress(host: InventoryHost): string;
}

/** An extra provisioning step after the swarm (e.g. the OpenFaaS stack). Must be idempotent. */
export interface ClusterStep {
  title: string;
  run(ctx: ClusterContext): Promise<{ changed: boolean; detail?: string }>;
}

export interface ProvisionOptions {
  connector: InventoryConnector;
  /** Only these inventory hosts (default all); the first manager is added when none is among them. */
  hosts?: InventoryHost[];
  /** Nodes in another swarm leave it and join this one. */
  force?: boolean;
  /** Remove swarm nodes that are not in the inventory. */
  prune?: boolean;
  /** Add the memory cgroup flags on Pis that lack them and reboot (also pifaas_fix_cgroups). */
  fixCgroups?: boolean;
  /** Overrides pifaas_docker_install. */
  dockerInstall?: DockerInstallMethod;
  /** Give up on a node after this long. Default 20 min. */
  nodeTimeoutMs?: number;
  /** How long the Docker API step waits for a running dockerd to answer (default 30 s). */
  dockerApiWaitMs?: number;
  /** How long to wait for a rebooting node. Default 5 min. */
  rebootWaitMs?: number;
  /** listr2 renderer: 'default' (TTY), 'simple' (lines), 'silent' (tests, --json). */
  renderer?: 'default' | 'simple' | 'silent';
  /** Extra steps after the swarm, in order. */
  clusterSteps?: ClusterStep[];
  /** Leave the connections open for the caller (result.members); default: closed at the end. */
  keepConnections?: boolean;
}

export type NodeStatus = 'changed' | 'unchanged' | 'failed';

export interface NodeSummary {
  name: string;
  role: 'manager' | 'worker';
  address: string;
  status: NodeStatus;
  changes: string[];
  warnings: string[];
  error?: { message: string; hint: string | null };
  facts?: NodeFacts;
  swarmNodeId?: string;
}

export interface ClusterStepSummary {
  title: string;
  status: NodeStatus;
  detail?: string;
  error?: { message: string; hint: string | null };
}

export interface ProvisionResult {
  ok: boolean;
  inventory: string;
  swarm: { clusterId: string | null; leader: string | null; strangers: StrangerNode[]; error?: { message: string; hint: string | null } };
  nodes: NodeSummary[];
  clusterSteps: ClusterStepSummary[];
  /** Open nodes (only with keepConnections; close them with closeMembers). */
  members?: SwarmMember[];
}

interface NodeState {
  host: InventoryHost;
  summary: NodeSummary;
  operator?: Operator;
  docker?: Docker;
  facts?: NodeFacts;
  signal: AbortSignal;
  /** The per-node timeout (covers the node's own steps; cleared when they end). */
  timer?: NodeJS.Timeout;
}

function errorInfo(e: unknown): { message: string; hint: string | null } {
  if (isUserError(e)) return { message: e.message, hint: e.hint ?? null };
  return { message: e instanceof Error ? e.message : String(e), hint: null };
}

function describe(f: NodeFacts): string {
  return [f.arch, f.piModel, `${(f.memoryMb / 1024).toFixed(1)} GB`, f.osName, f.dockerVersion ? `Docker ${f.dockerVersion}` : 'no Docker'].filter(Boolean).join(', ');
}

function isIPv4(s: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(s);
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/**
 * Waits for a node that was told to reboot: reconnects (retrying while it is down) until the boot id
 * differs from the one before, so a node that has not gone down yet is not mistaken for one that is
 * back. Returns the facts of the new boot.
 */
async function waitForReboot(name: string, op: Operator, bootIdBefore: string | undefined, timeoutMs: number, check: () => void): Promise<NodeFacts> {
  const deadline = Date.now() + timeoutMs;
  const gaveUp = (cause?: unknown) =>
    new UserError(
      `${name}: did not come back within ${Math.round(timeoutMs / 1000)} s of the reboot${cause instanceof Error ? ` (${cause.message.split('\n')[0]})` : ''}`,
      'check the node (power, network, sshd); a re-run carries on from here',
    );
  // Without a boot id (not Linux?) the only sign is time: give it a while to go down.
  await sleep(bootIdBefore ? 2000 : 10_000);
  for (;;) {
    check();
    try {
      await op.reconnect({ retryForMs: Math.max(0, deadline - Date.now()) });
      const facts = await gatherFacts(op);
      if (!bootIdBefore || (facts.bootId && facts.bootId !== bootIdBefore)) return facts;
    } catch (e) {
      // Not back yet, or reached just before it went down (the command died with it): keep waiting.
      // Anything else (a changed host key, refused credentials) is an answer, not a delay.
      const waiting = e instanceof ConnectFailedError || e instanceof CommandFailedError || !isUserError(e) || /cannot start a command over SSH/.test(e.message);
      if (!waiting) throw e;
      if (Date.now() >= deadline) throw gaveUp(e);
    }
    if (Date.now() >= deadline) throw gaveUp();
    await sleep(1000); // still the old boot: not down yet
  }
}

/** How long the Docker API step waits, by default, for a dockerd that runs but does not answer (yet). */
const DOCKER_API_WAIT_MS = 30_000;

/**
 * GET /version through the forwarded socket, retried while dockerd is still opening it, each call
 * bounded: a dockerd that runs but never answers is an error naming the node, not a hang.
 */
async function dockerApiVersion(name: string, docker: Docker, waitMs: number): Promise<{ Version?: string; ApiVersion?: string }> {
  // dockerode passes abortSignal on to the request; its type definitions lack it for version().
  const version = docker.version.bind(docker) as unknown as (o: { abortSignal: AbortSignal }) => Promise<{ Version?: string; ApiVersion?: string }>;
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await version({ abortSignal: AbortSignal.timeout(Math.max(1000, deadline - Date.now())) });
    } catch (e) {
      if (Date.now() >= deadline) {
        throw new UserError(
          `${name}: dockerd runs but its API did not answer on ${DEFAULT_DOCKER_SOCKET} within ${Math.round(waitMs / 1000)} s (${(e as Error).message.split('\n')[0]})`,
          'look at the Docker log on the node (`journalctl -u docker`, or /var/log/docker.log), restart Docker there if it hangs, and re-run',
          1,
          { cause: e },
        );
      }
      await sleep(500);
    }
  }
}

/** After a boot: waits for dockerd (started at boot, maybe after sshd); starts it if it does not come up. */
async function waitForDockerAfterBoot(op: Operator, facts: NodeFacts): Promise<string[]> {
  const deadline = Date.now() + 60_000;
  while (!(await dockerRunning(op))) {
    if (Date.now() >= deadline) return enableAndStartDocker(op, facts);
    await sleep(1000);
  }
  return [];
}

function nodeSteps(n: NodeState, options: ProvisionOptions): ListrTask[] {
  const { host, summary } = n;
  const op = () => n.operator as Operator;
  const check = () => {
    if (n.signal.aborted) throw n.signal.reason instanceof Error ? n.signal.reason : new Error('aborted');
  };
  return [
    {
      title: 'connect',
      task: async (_c, t) => {
        check();
        n.operator = await options.connector.connect(host, n.signal);
        t.title = `connected as ${n.operator.user}@${n.operator.address}`;
      },
    },
    {
      title: 'facts',
      task: async (_c, t) => {
        check();
        n.facts = await gatherFacts(op());
        summary.facts = n.facts;
        t.title = describe(n.facts);
      },
    },
    {
      title: 'Docker Engine',
      task: async (_c, t) => {
        check();
        const facts = n.facts as NodeFacts;
        if (!facts.dockerInstalled) {
          const method = options.dockerInstall ?? host.settings.docker_install ?? 'package';
          // daemon.json first: the daemon the package starts has it already, no restart to apply it.
          if (await ensureDaemonConfig(op(), facts)) summary.changes.push('wrote /etc/docker/daemon.json before installing Docker');
          t.output = `installing Docker (${method})`;
          await installDocker(op(), facts, method);
          summary.changes.push(`installed Docker (${method})`);
          n.facts = await gatherFacts(op());
          summary.facts = n.facts;
        }
        // A dockerd about to be started gets daemon.json first, as a fresh install does: no restart to apply it.
        const installed = n.facts as NodeFacts;
        const running = installed.dockerdRunning || (await dockerRunning(op()));
        if (!running && (await ensureDaemonConfig(op(), installed))) summary.changes.push('wrote /etc/docker/daemon.json before starting dockerd');
        const changes = await enableAndStartDocker(op(), installed, running);
        summary.changes.push(...changes);
        t.title = `Docker Engine ${n.facts?.dockerVersion ?? ''}${changes.length ? ` (${changes.join(', ')})` : ''}`.trim();
      },
    },
    {
      title: '/etc/docker/daemon.json',
      task: async (_c, t) => {
        check();
        if (await ensureDaemonConfig(op(), n.facts as NodeFacts)) {
          t.output = 'restarting dockerd';
          await restartDocker(op(), n.facts as NodeFacts);
          summary.changes.push('wrote /etc/docker/daemon.json and restarted dockerd');
          t.title = '/etc/docker/daemon.json written, dockerd restarted';
        } else t.title = '/etc/docker/daemon.json unchanged';
      },
    },
    {
      title: 'docker group',
      task: async (_c, t) => {
        check();
        const facts = n.facts as NodeFacts;
        if (await ensureDockerGroup(op(), facts)) {
          summary.changes.push(`added ${facts.user} to the docker group`);
        }
        if (facts.user !== 'root' && !facts.sessionInDockerGroup) {
          await op().reconnect(); // a new login picks up the group
          n.facts = await gatherFacts(op());
          summary.facts = n.facts;
        }
        t.title = facts.user === 'root' ? 'docker group (root: not needed)' : `${facts.user} in the docker group`;
      },
    },
    {
      title: 'memory cgroup',
      task: async (_c, t) => {
        check();
        const fix = options.fixCgroups ?? host.settings.fix_cgroups ?? false;
        const r = await ensureMemoryCgroup(op(), n.facts as NodeFacts, fix);
        if (r.result === 'warning' && r.message) {
          summary.warnings.push(r.message);
          t.title = 'memory cgroup: not enabled (warning)';
          return;
        }
        if (r.result === 'rebooting') {
          const file = (n.facts as NodeFacts).cmdlineFile ?? 'cmdline.txt';
          const waitMs = options.rebootWaitMs ?? 5 * 60_000;
          t.output = `${r.wroteFlags ? `added ${CGROUP_FLAGS.join(' ')} to ${file}; ` : ''}rebooting, waiting up to ${Math.round(waitMs / 1000)} s for the node to come back`;
          n.facts = await waitForReboot(host.name, op(), (n.facts as NodeFacts).bootId, waitMs, check);
          summary.facts = n.facts;
          summary.changes.push(r.wroteFlags ? `added ${CGROUP_FLAGS.join(' ')} to ${file} and rebooted` : `rebooted to enable the memory cgroup (${file} already had ${CGROUP_FLAGS.join(' ')})`);
          if (!n.facts.memoryCgroup) throw new UserError(`${host.name}: the memory cgroup is still not enabled after the reboot`, `check ${file} on the node (it should have ${CGROUP_FLAGS.join(' ')}) and the kernel`);
          // dockerd starts at boot, maybe after sshd: wait for it (start it if it is not enabled at boot).
          t.output = 'back up; waiting for dockerd';
          summary.changes.push(...(await waitForDockerAfterBoot(op(), n.facts)));
        }
        t.title = 'memory cgroup enabled';
      },
    },
    {
      title: 'Docker API over SSH',
      task: async (_c, t) => {
        check();
        n.docker = dockerFor(op());
        const v = await dockerApiVersion(host.name, n.docker, options.dockerApiWaitMs ?? DOCKER_API_WAIT_MS);
        t.title = `Docker API ${v.ApiVersion ?? '?'} reachable over SSH`;
      },
    },
  ];
}

/** Provisions the hosts of an inventory. Never throws for a node's failure: see result.nodes. */
export async function provision(inventory: Inventory, options: ProvisionOptions): Promise<ProvisionResult> {
  const chosen = options.hosts ?? inventory.hosts;
  // Joining needs a manager: a subset without one brings the first manager along (it stays unchanged).
  const firstManager = inventory.managers[0];
  const hosts = chosen.some((h) => h.role === 'manager') || !firstManager ? chosen : [firstManager, ...chosen];
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 20 * 60_000;
  const states: NodeState[] = hosts.map((host) => {
    const controller = new AbortController();
    const state: NodeState = {
      host,
      signal: controller.signal,
      summary: { name: host.name, role: host.role, address: host.address, status: 'unchanged', changes: [], warnings: [] },
    };
    const timer = setTimeout(() => {
      controller.abort(new UserError(`${host.name}: provisioning did not finish within ${Math.round(nodeTimeoutMs / 1000)} s`, 'check the node and re-run (finished steps are skipped)'));
      void state.operator?.close();
    }, nodeTimeoutMs);
    timer.unref();
    state.timer = timer;
    return state;
  });
  const result: ProvisionResult = {
    ok: false,
    inventory: inventory.file,
    swarm: { clusterId: null, leader: null, strangers: [] },
    nodes: states.map((s) => s.summary),
    clusterSteps: [],
  };
  let members: SwarmMember[] = [];
  let leader: SwarmMember | undefined;
  // One line per node and step while it fits the terminal; finished nodes fold into one line.
  const compact = states.length * 8 + 8 > (process.stdout.rows || 40);

  const tasks = new Listr(
    [
      {
        title: `Nodes (${states.length})`,
        task: (_c, task) =>
          task.newListr(
            states.map((n) => ({
              title: `${n.host.name} (${n.host.role}, ${n.host.address})`,
              task: async (_c2, nodeTask) => {
                const failed = (e: unknown): never => {
                  clearTimeout(n.timer);
                  const reason = n.signal.aborted ? n.signal.reason : e;
                  n.summary.status = 'failed';
                  n.summary.error = errorInfo(reason);
                  throw reason instanceof Error ? reason : new Error(String(reason));
                };
                const done = () => {
                  clearTimeout(n.timer);
                  nodeTask.title = `${n.host.name}: ${n.summary.changes.length ? n.summary.changes.join(', ') : 'nothing to change'}`;
                };
                const steps = nodeSteps(n, options);
                if (compact) {
                  // Many nodes: one line per node showing its current step (a terminal would overflow).
                  const line = { set title(v: string) { nodeTask.output = v; }, set output(v: string) { nodeTask.output = v; } };
                  try {
                    for (const step of steps) {
                      nodeTask.output = String(step.title);
                      await (step.task as (ctx: unknown, t: unknown) => Promise<void>)(undefined, line);
                    }
                  } catch (e) {
                    failed(e);
                  }
                  done();
                  return undefined;
                }
                // Returned (not run here) so the same renderer draws the steps under the node.
                return nodeTask.newListr(
                  [
                    ...steps.map((step): ListrTask => ({
                      ...step,
                      task: (ctx, t) => (step.task as (c: unknown, tt: unknown) => Promise<void>)(ctx, t).catch(failed),
                    })),
                    { task: async () => done() }, // no title: not drawn
                  ],
                  { concurrent: false, exitOnError: true },
                );
              },
            })),
            { concurrent: true, exitOnError: false },
          ),
      },
      {
        title: 'Swarm',
        task: async (_c, task) => {
          const ready = states.filter((s) => s.summary.status !== 'failed' && s.docker && s.facts);
          const candidates: SwarmMember[] = ready.map((s) => ({
            host: s.host,
            operator: s.operator as Operator,
            docker: s.docker as Docker,
            facts: s.facts as NodeFacts,
            advertiseAddr: s.host.settings.advertise_addr ?? (isIPv4(s.host.address) ? s.host.address : (s.facts?.primaryAddress ?? s.host.address)),
          }));
          if (candidates.length === 0) {
            result.swarm.error = { message: 'no node is ready for the swarm', hint: 'fix the node errors and re-run' };
            throw new UserError(result.swarm.error.message);
          }
          const outcome = await formSwarm(candidates, {
            force: options.force,
            prune: options.prune,
            inventoryHosts: inventory.hosts,
            report: (node, message) => (task.output = `${node}: ${message}`),
          }).catch((e: unknown) => {
            result.swarm.error = errorInfo(e);
            throw e;
          });
          for (const s of ready) {
            const o = outcome.nodes.get(s.host.name);
            if (!o) continue;
            s.summary.changes.push(...o.changes);
            s.summary.swarmNodeId = o.nodeId;
            if (o.error) {
              s.summary.status = 'failed';
              s.summary.error = errorInfo(o.error);
            }
          }
          leader = outcome.leader;
          members = candidates.filter((m) => outcome.nodes.get(m.host.name)?.error === undefined);
          Object.assign(result.swarm, { clusterId: outcome.clusterId ?? null, leader: leader?.host.name ?? null, strangers: outcome.strangers });
          const failed = ready.filter((s) => s.summary.status === 'failed').map((s) => s.host.name);
          task.title = `Swarm ${outcome.clusterId ? outcome.clusterId.slice(0, 12) : ''}: ${members.length} node(s)${failed.length ? `, failed: ${failed.join(', ')}` : ''}${
            outcome.strangers.length ? `, not in the inventory: ${outcome.strangers.map((x) => `${x.hostname}${x.removed ? ' (removed)' : ''}`).join(', ')}` : ''
          }`;
          if (failed.length) throw new UserError(`swarm step failed for ${failed.join(', ')}`);
        },
      },
      ...(options.clusterSteps ?? []).map(
        (step): ListrTask => ({
          title: step.title,
          task: async (_c, task) => {
            if (!leader) {
              result.clusterSteps.push({ title: step.title, status: 'failed', error: { message: 'skipped: the swarm was not formed', hint: null } });
              throw new UserError(`${step.title}: skipped, the swarm was not formed`);
            }
            try {
              const r = await step.run({ inventory, leader, members, report: (m) => (task.output = m), hostAddress: (h) => options.connector.targetFor(h).hostname });
              result.clusterSteps.push({ title: step.title, status: r.changed ? 'changed' : 'unchanged', detail: r.detail });
              if (r.detail) task.title = `${step.title}: ${r.detail}`;
            } catch (e) {
              result.clusterSteps.push({ title: step.title, status: 'failed', error: errorInfo(e) });
              throw e;
            }
          },
        }),
      ),
    ],
    {
      concurrent: false,
      exitOnError: false,
      renderer: options.renderer ?? 'default',
      fallbackRenderer: 'simple',
      rendererOptions: { collapseSubtasks: true, collapseErrors: false },
      collectErrors: 'minimal',
    } as never,
  );
  try {
    await tasks.run();
  } finally {
    for (const s of states) clearTimeout(s.timer);
  }
  for (const s of states) {
    if (s.summary.status !== 'failed') s.summary.status = s.summary.changes.length ? 'changed' : 'unchanged';
  }
  result.ok = states.every((s) => s.summary.status !== 'failed') && result.clusterSteps.every((c) => c.status !== 'failed') && leader !== undefined;
  if (options.keepConnections) {
    result.members = members;
    const kept = new Set(members.map((m) => m.operator));
    await closeOperators(states.map((s) => s.operator).filter((o) => o && !kept.has(o)));
  } else await closeOperators(states.map((s) => s.operator));
  return result;
}

async function closeOperators(ops: (Operator | undefined)[]): Promise<void> {
  await Promise.all(ops.map((o) => o?.close().catch(() => undefined)));
}

/** Closes the connections kept by provision({keepConnections: true}). */
export function closeMembers(members: SwarmMember[] | undefined): Promise<void> {
  return closeOperators((members ?? []).map((m) => m.operator));
}
