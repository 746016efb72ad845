// `pifaas provision` and `pifaas status` on a real 3-node lab (sshd, dockerd, swarm in network
// namespaces), through the CLI a user runs: from nothing to a labelled swarm, idempotent re-runs,
// a node that is down, a changed host key, a wrong sudo password, another swarm, strangers.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInventory } from '../../src/inventory/inventory.js';
import { labDown, labNodeExec, labUp, writeLabInventory, type Lab } from '../../src/lab/lab.js';
import { dockerFor } from '../../src/operator/docker-client.js';
import { InventoryConnector } from '../../src/ssh/inventory-connect.js';
import { clusterStatus, type ClusterStatus } from '../../src/swarm/cluster-status.js';
import { dockerVersionOf } from '../../src/swarm/node-facts.js';
import { editNodeSpec, type NodeSpecDoc } from '../../src/swarm/swarm-cluster.js';
import { provision, type ProvisionResult } from '../../src/swarm/provision.js';
import { jsonOutput, runCli } from '../lab/run-cli.js';

const LAB = 't3p';
let dir: string;
let lab: Lab;

async function provisionJson(inventoryFile: string, ...flags: string[]): Promise<{ code: number; result: ProvisionResult; stderr: string }> {
  const r = await runCli(['provision', inventoryFile, '--json', '--connect-retry', '2', ...flags]);
  return { code: r.code, result: jsonOutput<ProvisionResult>(r), stderr: r.stderr };
}

/** The same run in-process (what --json prints), where the CLI's start-up time would add nothing. */
async function provisionApi(inventoryFile: string, options: { force?: boolean; prune?: boolean; acceptNew?: boolean } = {}): Promise<ProvisionResult> {
  const inventory = await loadInventory(inventoryFile);
  const connector = new InventoryConnector(inventory, { connectRetryMs: 2000, acceptNewHostKeys: options.acceptNew });
  return provision(inventory, { connector, force: options.force, prune: options.prune, renderer: 'silent' });
}

async function status(file = lab.inventoryFile): Promise<ClusterStatus> {
  const inventory = await loadInventory(file);
  return clusterStatus(inventory, new InventoryConnector(inventory, { connectRetryMs: 2000 }));
}

const summary = (r: ProvisionResult) => r.nodes.map((n) => [n.name, n.status]);

/** A run that must succeed: every error behind `ok` (nodes, swarm, cluster steps) in one assertion, so a failure says what went wrong. */
function expectNoErrors(r: ProvisionResult): void {
  expect({
    nodes: r.nodes.map((n) => [n.name, n.error?.message ?? 'ok']),
    swarm: r.swarm.error?.message ?? 'ok',
    steps: r.clusterSteps.filter((c) => c.status === 'failed').map((c) => `${c.title}: ${c.error?.message ?? '?'}`),
  }).toEqual({
    nodes: r.nodes.map((n) => [n.name, 'ok']),
    swarm: 'ok',
    steps: [],
  });
  expect(r.ok).toBe(true);
}

/** What must not move on a run that changes nothing: dockerd's pid, daemon.json, the swarm's node IDs and specs. */
async function fingerprint(): Promise<string[]> {
  const out: string[] = [];
  for (const n of lab.nodes) {
    const r = await labNodeExec(LAB, n.name, 'cat /run/docker.pid; stat -c %Y /etc/docker/daemon.json; docker node ls -q 2>/dev/null | xargs -r docker node inspect -f "{{.ID}} {{json .Spec}}" 2>/dev/null || true');
    out.push(`${n.name}: ${r.stdout.trim()}`);
  }
  return out;
}

/**
 * Makes a node leave its swarm. On a loaded machine dockerd may answer "context deadline exceeded"
 * while the leave still completes: check the node's state and try again.
 */
const LEAVE_SWARM = `(for i in 1 2 3 4 5; do docker swarm leave --force >/dev/null 2>&1; [ "$(docker info -f '{{.Swarm.LocalNodeState}}')" = inactive ] && exit 0; sleep 2; done; echo 'still in the swarm' >&2; exit 1)`;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pifaas-t3-prov-'));
  // Provisioning ends with the OpenFaaS step, which saves gateway credentials: into the test's folder
  // (this process and the CLI runs it spawns), never the user's ~/.openfaas.
  process.env.OPENFAAS_CONFIG = path.join(dir, 'openfaas');
  // Docker installed but not running: provision has to start and enable it.
  lab = await labUp({ name: LAB, nodes: 3, subnet: '10.93.2.0/24', dir, docker: false });
});

afterAll(async () => {
  delete process.env.OPENFAAS_CONFIG;
  await labDown(LAB);
  await rm(dir, { recursive: true, force: true });
});

describe('pifaas provision on a 3-node lab', () => {
  it('goes from nothing to a swarm of 1 manager + 2 workers, all Ready and labelled', async () => {
    // A daemon.json of the user's own on one node: kept, and merged with pifaas's settings.
    await labNodeExec(LAB, 't3p-2', `mkdir -p /etc/docker && echo '{"debug": false, "log-opts": {"max-size": "50m"}}' > /etc/docker/daemon.json`);
    const { code, result } = await provisionJson(lab.inventoryFile);
    expect(code).toBe(0);
    expectNoErrors(result);
    expect(summary(result)).toEqual([
      ['t3p-1', 'changed'],
      ['t3p-2', 'changed'],
      ['t3p-3', 'changed'],
    ]);
    const [m, w] = result.nodes;
    expect(m?.changes).toEqual(
      expect.arrayContaining(['wrote /etc/docker/daemon.json before starting dockerd', 'started dockerd', 'added pi to the docker group', 'initialised the swarm (advertising 10.93.2.11)']),
    );
    // daemon.json went in before dockerd started: no restart to apply it.
    expect(result.nodes.flatMap((n) => n.changes).filter((c) => /restarted dockerd/.test(c))).toEqual([]);
    expect(w?.changes).toEqual(expect.arrayContaining(['started dockerd', 'joined the swarm as worker']));
    expect(m?.facts).toMatchObject({ arch: 'x86_64', osId: 'debian', systemd: false, memoryCgroup: true, dockerdRunning: true });
    // The nodes run this machine's packaged Docker: the version dpkg gives is the one dockerd prints.
    const printed = dockerVersionOf(undefined, (await promisify(execFile)('/usr/sbin/dockerd', ['--version'])).stdout);
    expect(printed).toBeTruthy();
    expect(result.nodes.map((n) => n.facts?.dockerVersion)).toEqual([printed, printed, printed]);
    expect(result.swarm.leader).toBe('t3p-1');

    const cli = await runCli(['status', lab.inventoryFile, '--json']);
    expect(cli.code).toBe(0);
    const s = JSON.parse(cli.stdout) as ClusterStatus;
    expect(s.via).toBe('t3p-1');
    expect(s.nodes.map((n) => [n.name, n.address, n.role, n.managerStatus, n.state, n.availability, n.arch, n.labels['pifaas.arch'], n.labels['pifaas.name']])).toEqual([
      ['t3p-1', '10.93.2.11', 'manager', 'leader', 'ready', 'active', 'x86_64', 'x86_64', 't3p-1'],
      ['t3p-2', '10.93.2.12', 'worker', null, 'ready', 'active', 'x86_64', 'x86_64', 't3p-2'],
      ['t3p-3', '10.93.2.13', 'worker', null, 'ready', 'active', 'x86_64', 'x86_64', 't3p-3'],
    ]);
    expect(s.nodes[0]?.dockerVersion).toMatch(/^\d+\.\d+/);
    const daemonJson = (node: string) => labNodeExec(LAB, node, 'cat /etc/docker/daemon.json').then((r) => JSON.parse(r.stdout) as Record<string, unknown>);
    expect(await daemonJson('t3p-1')).toEqual({ 'log-driver': 'json-file', 'log-opts': { 'max-size': '10m', 'max-file': '3' } });
    expect(await daemonJson('t3p-2')).toEqual({ debug: false, 'log-driver': 'json-file', 'log-opts': { 'max-size': '50m', 'max-file': '3' } });
    // Enabled at boot the Debian way (no systemd on the lab nodes).
    expect((await labNodeExec(LAB, 't3p-3', 'ls /etc/rc2.d')).stdout).toMatch(/S\d+docker/);
  });

  it('a second run reports every node unchanged and changes nothing', async () => {
    const before = await fingerprint();
    const r = await runCli(['provision', lab.inventoryFile]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/t3p-1 +manager +unchanged +-/);
    expect(r.stdout).toMatch(/t3p-2 +worker +unchanged +-/);
    expect(r.stdout).toMatch(/t3p-3 +worker +unchanged +-/);
    expect(r.stdout).toContain('ready: 3 node(s) provisioned');
    // listr2 lines, one per node and step (plain lines when not on a terminal)
    expect(r.stdout).toContain('/etc/docker/daemon.json unchanged');
    expect(await fingerprint()).toEqual(before);
    // One node only: the first manager comes along to join the swarm through it.
    const one = await provisionJson(lab.inventoryFile, '--host', 't3p-3');
    expect(one.code).toBe(0);
    expect(summary(one.result)).toEqual([
      ['t3p-1', 'unchanged'],
      ['t3p-3', 'unchanged'],
    ]);
  });

  it('a node update that loses a race with another update of that node is made again on the node as it now is', async () => {
    // Swarm answers such an update "update out of sequence"; a worker that has just joined can cause
    // it (the manager is still recording the node while provision labels it). Here the other update
    // is made between the read of the node and editNodeSpec's update of it, through the docker CLI.
    const inventory = await loadInventory(lab.inventoryFile);
    const op = await new InventoryConnector(inventory, { connectRetryMs: 2000 }).connect(inventory.hosts[0]!);
    const id = (await labNodeExec(LAB, 't3p-1', 'docker node ls -q --filter node.label=pifaas.name=t3p-2')).stdout.trim();
    const labelsOf = async () => JSON.parse((await labNodeExec(LAB, 't3p-1', `docker node inspect ${id} -f '{{json .Spec.Labels}}'`)).stdout) as Record<string, string>;
    try {
      const docker = dockerFor(op);
      const readNode = async () => (await docker.getNode(id).inspect()) as NodeSpecDoc;
      let reads = 0;
      const { changes } = await editNodeSpec(docker, await readNode(), async (node) => {
        reads++;
        if (reads === 1) await labNodeExec(LAB, 't3p-1', `docker node update --label-add race.other=1 ${id} >/dev/null`);
        return { spec: { ...node.Spec, Labels: { ...node.Spec.Labels, 'race.ours': '1' } }, changes: ['labelled race.ours=1'] };
      });
      expect({ reads, changes }).toEqual({ reads: 2, changes: ['labelled race.ours=1'] });
      expect(await labelsOf()).toMatchObject({ 'pifaas.name': 't3p-2', 'race.other': '1', 'race.ours': '1' });

      // A race lost every time: after the attempts allowed, swarm's answer is the error.
      reads = 0;
      const always = editNodeSpec(
        docker,
        await readNode(),
        async (node) => {
          reads++;
          await labNodeExec(LAB, 't3p-1', `docker node update --label-add race.other=${reads + 1} ${id} >/dev/null`);
          return { spec: { ...node.Spec, Labels: { ...node.Spec.Labels, 'race.ours': '2' } }, changes: ['labelled race.ours=2'] };
        },
        2,
      );
      await expect(always).rejects.toThrow(/update out of sequence/);
      expect(reads).toBe(2);
      expect((await labelsOf())['race.ours']).toBe('1');
    } finally {
      await labNodeExec(LAB, 't3p-1', `docker node update --label-rm race.other --label-rm race.ours ${id} >/dev/null 2>&1 || true`);
      await op.close();
    }
  });

  it('a wrong sudo password is a clear error on every node, and is never printed', async () => {
    const bad = path.join(dir, 'wrong-password.yaml');
    await writeLabInventory(lab, bad, { becomePassword: 'Wr0ng-Passw0rd' });
    const r = await runCli(['provision', bad, '--connect-retry', '2']);
    expect(r.code).toBe(1);
    for (const n of lab.nodes) expect(r.stdout).toContain(`error: ${n.name}: sudo rejected the password for user pi`);
    expect(r.stdout).toContain('hint: check ansible_become_password in the inventory');
    expect(r.stdout + r.stderr).not.toContain('Wr0ng-Passw0rd');
    expect(r.stdout + r.stderr).not.toContain(lab.piPassword);
  });

  it('a node presenting a different host key is refused, even with --accept-new-host-keys', async () => {
    await labNodeExec(LAB, 't3p-2', "rm -f /etc/ssh/ssh_host_ed25519_key*; ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key; service ssh restart >/dev/null");
    const { code, result } = await provisionJson(lab.inventoryFile, '--accept-new-host-keys');
    expect(code).toBe(1);
    expect(summary(result)).toEqual([
      ['t3p-1', 'unchanged'],
      ['t3p-2', 'failed'],
      ['t3p-3', 'unchanged'],
    ]);
    const err = result.nodes[1]?.error;
    expect(err?.message).toMatch(/^t3p-2: the host key of 10\.93\.2\.12:22 has CHANGED: it now presents ssh-ed25519 SHA256:\S+, which does not match the ssh-ed25519 key recorded in .*known_hosts line 2/);
    expect(err?.hint).toContain(`ssh-keygen -R '10.93.2.12' -f ${lab.knownHostsFile}`);
    // The user's fix: drop the old key and accept the new one.
    const lines = (await readFile(lab.knownHostsFile, 'utf8')).split('\n').filter((l) => l && !l.startsWith('10.93.2.12 '));
    await writeFile(lab.knownHostsFile, `${lines.join('\n')}\n`);
    const fixed = await provisionApi(lab.inventoryFile, { acceptNew: true });
    expectNoErrors(fixed);
    expect(await readFile(lab.knownHostsFile, 'utf8')).toMatch(/^10\.93\.2\.12 ssh-ed25519 /m);
  });

  it('a node whose sshd is stopped fails naming it while the others finish; back up, a re-run converges', async () => {
    // t3p-3 left the swarm and then went unreachable: the re-run has real work to do.
    await labNodeExec(LAB, 't3p-3', `${LEAVE_SWARM} && service ssh stop >/dev/null`);
    const down = await runCli(['provision', lab.inventoryFile, '--connect-retry', '2']);
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/t3p-1 +manager +unchanged/);
    expect(down.stdout).toMatch(/t3p-2 +worker +unchanged/);
    expect(down.stdout).toMatch(/t3p-3 +worker +failed +t3p-3: cannot reach sshd at 10\.93\.2\.13:22/);
    expect(down.stdout).toContain('error: t3p-3: cannot reach sshd at 10.93.2.13:22: connect ECONNREFUSED');

    await labNodeExec(LAB, 't3p-3', 'service ssh start >/dev/null');
    const result = await provisionApi(lab.inventoryFile);
    expectNoErrors(result);
    expect(summary(result)).toEqual([
      ['t3p-1', 'unchanged'],
      ['t3p-2', 'unchanged'],
      ['t3p-3', 'changed'],
    ]);
    expect(result.nodes[2]?.changes).toEqual(expect.arrayContaining(['joined the swarm as worker', expect.stringMatching(/^removed its stale swarm entry /)]));
    const s = await status();
    expect(s.nodes.map((n) => [n.name, n.state])).toEqual([
      ['t3p-1', 'ready'],
      ['t3p-2', 'ready'],
      ['t3p-3', 'ready'],
    ]);
  });

  it('a node whose dockerd runs but does not answer fails naming it while the others finish; answering again, a re-run converges', async () => {
    // Stopped (SIGSTOP): the process and its socket are there, nothing answers on the socket.
    await labNodeExec(LAB, 't3p-2', 'kill -STOP $(cat /run/docker.pid)');
    let result: ProvisionResult;
    try {
      const inventory = await loadInventory(lab.inventoryFile);
      result = await provision(inventory, { connector: new InventoryConnector(inventory), dockerApiWaitMs: 3000, renderer: 'silent' });
    } finally {
      await labNodeExec(LAB, 't3p-2', 'kill -CONT $(cat /run/docker.pid)');
    }
    expect(summary(result)).toEqual([
      ['t3p-1', 'unchanged'],
      ['t3p-2', 'failed'],
      ['t3p-3', 'unchanged'],
    ]);
    expect(result.nodes[1]?.error?.message).toMatch(/^t3p-2: dockerd runs but its API did not answer on \/var\/run\/docker\.sock within 3 s/);
    expect(result.nodes[1]?.error?.hint).toMatch(/Docker log on the node/);
    const again = await provisionApi(lab.inventoryFile);
    expectNoErrors(again);
    expect(summary(again)).toEqual([
      ['t3p-1', 'unchanged'],
      ['t3p-2', 'unchanged'],
      ['t3p-3', 'unchanged'],
    ]);
  });

  it('gives up on a node after the per-node timeout (sshd accepts but never answers) while the others finish', async () => {
    // A listener that accepts TCP on port 22 and never speaks SSH: the handshake hangs.
    await labNodeExec(LAB, 't3p-3', 'service ssh stop >/dev/null; busybox nc -lk -p 22 -e sleep 600 </dev/null >/dev/null 2>&1 & echo $! > /run/pifaas-test-listener.pid');
    try {
      const inventory = await loadInventory(lab.inventoryFile);
      const started = Date.now();
      const result = await provision(inventory, { connector: new InventoryConnector(inventory, { connectRetryMs: 60_000 }), nodeTimeoutMs: 20_000, renderer: 'silent' });
      expect(Date.now() - started).toBeLessThan(50_000);
      expect(summary(result)).toEqual([
        ['t3p-1', 'unchanged'],
        ['t3p-2', 'unchanged'],
        ['t3p-3', 'failed'],
      ]);
      expect(result.nodes[2]?.error?.message).toBe('t3p-3: provisioning did not finish within 20 s');
    } finally {
      await labNodeExec(LAB, 't3p-3', 'p=$(cat /run/pifaas-test-listener.pid); kill $(cat /proc/$p/task/*/children) "$p"; service ssh start >/dev/null', { check: false });
    }
  });

  it('refuses a node that is in a different swarm unless --force; leaves swarm nodes not in the inventory alone unless --prune', async () => {
    await labNodeExec(LAB, 't3p-3', `${LEAVE_SWARM} && docker swarm init --advertise-addr 10.93.2.13 >/dev/null`);
    const refused = await provisionApi(lab.inventoryFile);
    expect(refused.ok).toBe(false);
    expect(summary(refused)).toEqual([
      ['t3p-1', 'unchanged'],
      ['t3p-2', 'unchanged'],
      ['t3p-3', 'failed'],
    ]);
    expect(refused.nodes[2]?.error?.message).toMatch(/^t3p-3 is already part of a different swarm/);
    expect(refused.nodes[2]?.error?.hint).toContain('--force');
    const forced = await provisionApi(lab.inventoryFile, { force: true });
    expectNoErrors(forced);
    expect(forced.nodes[2]?.changes).toEqual(expect.arrayContaining(['left its old swarm', 'joined the swarm as worker']));

    // An inventory without t3p-3: it is a stranger to that inventory.
    const two = path.join(dir, 'two-nodes.yaml');
    await writeLabInventory(lab, two, { nodes: ['t3p-1', 't3p-2'] });
    const alone = await runCli(['provision', two]);
    expect(alone.code).toBe(0);
    expect(alone.stdout).toContain('swarm nodes not in the inventory: t3p-3 (ready) - left alone; --prune removes them');
    const pruned = await provisionApi(two, { prune: true });
    expectNoErrors(pruned);
    expect(pruned.swarm.strangers).toEqual([expect.objectContaining({ hostname: 't3p-3', removed: true })]);
    const twoStatus = await status(two);
    expect(twoStatus.nodes.map((n) => n.name)).toEqual(['t3p-1', 't3p-2']);
    expect((await loadInventory(two)).hosts.length).toBe(2);
  });
});
