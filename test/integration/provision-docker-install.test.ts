// `pifaas provision` where Docker Engine is absent: a 2-node lab whose second node starts without
// docker.io/containerd/runc/tini (removed from its own overlays of /usr, /etc and /var) and whose
// only apt source is a LAN mirror on the lab bridge (the air-gapped-site setup). Provision installs
// docker.io there with apt-get as the non-root `pi` (sudo password on stdin), starts and enables it
// the Debian way, adds pi to the docker group, writes daemon.json and joins the swarm; a second run
// changes nothing. This machine's own Docker packages, files and daemons must not move.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labNodeExec, labUp, type Lab } from '../../src/lab/lab.js';
import { namespaceOf } from '../../src/lab/lab-processes.js';
import { LocalOperator } from '../../src/operator/local-operator.js';
import type { ClusterStatus } from '../../src/swarm/cluster-status.js';
import type { ProvisionResult } from '../../src/swarm/provision.js';
import { dockerDebFolder, serveFolder, type DebFolder, type FolderServer } from '../lab/apt-mirror.js';
import { jsonOutput, runCli } from '../lab/run-cli.js';

const LAB = 't3d';
const SUBNET = '10.96.0.0/24';
const GATEWAY = '10.96.0.1';
const MIRROR_PORT = 8096;
const host = new LocalOperator();
let dir: string;
let lab: Lab;
let debs: DebFolder;
let mirror: FolderServer | undefined;
let hostBefore: string;

/** This machine's Docker: package states, the files, its boot links, whether its own dockerd runs. */
async function hostDocker(): Promise<string> {
  const r = await host.run(
    [
      `dpkg-query -W -f '\${Package} \${Version} \${db:Status-Abbrev}\\n' docker.io containerd runc tini`,
      'sha256sum /usr/sbin/dockerd /usr/bin/docker /usr/bin/containerd /usr/sbin/runc /usr/bin/tini /etc/init.d/docker /etc/default/docker /var/lib/dpkg/info/docker.io.list',
      'stat -c "%n %i %s %Y" /usr/sbin/dockerd /usr/bin/containerd /var/lib/dpkg/status /etc/group',
      'ls /etc/rc2.d | grep docker || true',
      'cat /run/docker.pid 2>/dev/null || echo "no system dockerd"',
    ].join('; '),
  );
  return r.stdout;
}

async function provisionJson(...flags: string[]): Promise<{ code: number; result: ProvisionResult; stderr: string }> {
  const r = await runCli(['provision', lab.inventoryFile, '--json', '--connect-retry', '2', ...flags], { env: { HOME: dir } });
  return { code: r.code, result: jsonOutput<ProvisionResult>(r), stderr: r.stderr };
}

// The CLI runs with HOME in the test's dir: the OpenFaaS credentials provision saves stay there.
const node2 = (script: string) => labNodeExec(LAB, 't3d-2', script, { timeoutMs: 120_000 });

beforeAll(async () => {
  hostBefore = await hostDocker();
  debs = await dockerDebFolder();
  dir = await mkdtemp(path.join(tmpdir(), 'pifaas-t3-dockerless-'));
  lab = await labUp({ name: LAB, nodes: 2, subnet: SUBNET, dir, withoutDocker: [2], aptSources: `deb [trusted=yes] http://${GATEWAY}:${MIRROR_PORT}/ ./` });
  mirror = await serveFolder(debs.dir, GATEWAY, MIRROR_PORT);
}, 15 * 60_000);

afterAll(async () => {
  await mirror?.close();
  await labDown(LAB);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('pifaas provision on a node without Docker (apt from a LAN mirror)', () => {
  it('the lab node starts without Docker and apt sees only the mirror; this machine keeps its Docker', async () => {
    const absent = await node2('command -v dockerd containerd runc tini; ls /usr/bin/docker 2>&1; dpkg-query -W docker.io containerd runc tini 2>&1; getent group docker; ls /etc/init.d/docker 2>&1; true');
    expect(absent.stdout).not.toMatch(/^\/usr\//m);
    expect(absent.stdout).toContain("cannot access '/usr/bin/docker'");
    expect(absent.stdout).toContain('no packages found matching docker.io');
    expect(absent.stdout).toContain('No such file or directory');
    // What apt would install there: exactly Docker's four packages, from the mirror.
    const sim = await node2('apt-get update -q >/dev/null && apt-get install --simulate -q docker.io');
    expect(
      sim.stdout
        .split('\n')
        .filter((l) => l.startsWith('Inst '))
        .map((l) => `${l.split(' ')[1]}=${/\(([^ ]+) /.exec(l)?.[1]}`)
        .sort(),
    ).toEqual([...debs.packages].sort());
    expect(mirror?.requests).toContain('/Packages.gz');
    // The other node and this machine still have theirs.
    expect((await labNodeExec(LAB, 't3d-1', 'docker version --format "{{.Server.Version}}"')).stdout).toMatch(/^\d+\./);
    expect(await hostDocker()).toBe(hostBefore);
    await expect(labUp({ name: 't3dx', nodes: 2, subnet: '10.96.1.0/24', dir, withoutDocker: [3] })).rejects.toThrow('--without-docker 3: not a node of this lab (nodes are 1 to 2)');
  });

  it('--docker-install convenience-script fails on that node with a clear error (get.docker.com is out of reach)', async () => {
    const { code, result } = await provisionJson('--docker-install', 'convenience-script');
    expect(code).toBe(1);
    const failed = result.nodes.find((n) => n.name === 't3d-2');
    expect(failed?.status).toBe('failed');
    expect(failed?.error?.message).toMatch(/^t3d-2: could not download Docker's convenience script from https:\/\/get\.docker\.com:/);
    expect(failed?.error?.hint).toContain('--docker-install package');
    expect(result.nodes.find((n) => n.name === 't3d-1')?.status).not.toBe('failed');
    expect((await node2('command -v dockerd || echo absent')).stdout.trim()).toBe('absent');
    // What came before the install stays done: pifaas's daemon.json, for the daemon to be installed.
    expect(failed?.changes).toEqual(['wrote /etc/docker/daemon.json before installing Docker']);
    expect(JSON.parse((await node2('cat /etc/docker/daemon.json')).stdout)).toEqual({ 'log-driver': 'json-file', 'log-opts': { 'max-size': '10m', 'max-file': '3' } });
  });

  it('installs docker.io with apt as pi, starts and enables it, adds pi to the docker group, joins the swarm', async () => {
    const { code, result, stderr } = await provisionJson();
    expect(stderr).not.toContain(lab.piPassword);
    // Each node's error, if any, in the assertion's message.
    expect(result.nodes.map((n) => [n.name, n.error?.message ?? 'ok'])).toEqual([
      ['t3d-1', 'ok'],
      ['t3d-2', 'ok'],
    ]);
    expect(code).toBe(0);
    expect(result.ok).toBe(true);
    const n2 = result.nodes.find((n) => n.name === 't3d-2');
    expect(n2?.status).toBe('changed');
    expect(n2?.changes).toEqual(
      expect.arrayContaining([
        'installed Docker (package)',
        'started dockerd',
        'added pi to the docker group',
        'joined the swarm as worker',
      ]),
    );
    // The same Docker as this machine's (same package version): "20.10.24+dfsg1" here.
    const version = /^Docker version ([^ ,]+)/.exec((await host.run('/usr/sbin/dockerd --version')).stdout)?.[1];
    expect(version).toBeTruthy();
    expect(n2?.facts?.dockerVersion).toBe(version);
    expect(mirror?.requests.filter((r) => r.endsWith('.deb')).length).toBe(4);
    // The daemon started after the install already had pifaas's daemon.json (written by the failed
    // run above): no restart was needed, and a new container gets its log rotation.
    expect(n2?.changes.filter((c) => /restart/.test(c))).toEqual([]);
    const logConfig = await node2(
      "tar cf - --files-from /dev/null | docker import - pifaas-empty:1 >/dev/null && docker create --name logcheck pifaas-empty:1 /none >/dev/null && docker inspect logcheck --format '{{json .HostConfig.LogConfig}}'; docker rm logcheck >/dev/null; docker rmi pifaas-empty:1 >/dev/null",
    );
    expect(JSON.parse(logConfig.stdout.trim().split('\n')[0]!)).toEqual({ Type: 'json-file', Config: { 'max-file': '3', 'max-size': '10m' } });

    // On the node: the packages installed by dpkg, dockerd started by the init script inside the
    // node (its own mount namespace, not this machine's), enabled at boot, pi in the docker group.
    const state = await node2(
      `dpkg-query -W -f '\${Package}=\${Version} \${db:Status-Abbrev}\\n' docker.io containerd runc tini; ls /etc/rc2.d | grep docker; id -nG pi; cat /etc/docker/daemon.json; cat /run/docker.pid`,
    );
    const lines = state.stdout.trim().split('\n');
    expect(lines.slice(0, 4).sort()).toEqual(debs.packages.map((p) => `${p} ii `).sort());
    expect(state.stdout).toMatch(/^S\d+docker$/m);
    expect(state.stdout).toMatch(/^pi .*\bdocker\b/m);
    expect(JSON.parse(state.stdout.slice(state.stdout.indexOf('{'), state.stdout.lastIndexOf('}') + 1))).toMatchObject({ 'log-driver': 'json-file' });
    const pid = Number(lines.at(-1));
    expect((await host.run(`cat /proc/${pid}/comm`)).stdout.trim()).toBe('dockerd');
    expect(await namespaceOf(pid, 'mnt')).not.toBe(await namespaceOf(process.pid, 'mnt'));

    // pi reaches Docker without sudo in a new login.
    expect((await node2('runuser -u pi -- docker version --format "{{.Server.Version}}"')).stdout.trim()).toBe(version);
    const asPi = await runCli(['status', lab.inventoryFile, '--json'], { env: { HOME: dir } });
    expect(asPi.code).toBe(0);
    const s = JSON.parse(asPi.stdout) as ClusterStatus;
    expect(s.nodes.map((n) => [n.name, n.role, n.state, n.dockerVersion])).toEqual([
      ['t3d-1', 'manager', 'ready', expect.stringMatching(/^\d+\./)],
      ['t3d-2', 'worker', 'ready', version],
    ]);
  });

  it('a second run reports both nodes unchanged and installs nothing', async () => {
    const pidBefore = (await node2('cat /run/docker.pid')).stdout;
    const debsBefore = mirror?.requests.length;
    const { code, result } = await provisionJson();
    expect(code).toBe(0);
    expect(result.nodes.map((n) => [n.name, n.status, n.changes])).toEqual([
      ['t3d-1', 'unchanged', []],
      ['t3d-2', 'unchanged', []],
    ]);
    expect((await node2('cat /run/docker.pid')).stdout).toBe(pidBefore);
    expect(mirror?.requests.length).toBe(debsBefore);
    // `lab up` with the same settings gives back the running lab, Docker installed there and all.
    const again = await labUp({ name: LAB, nodes: 2, subnet: SUBNET, dir, withoutDocker: [2], aptSources: `deb [trusted=yes] http://${GATEWAY}:${MIRROR_PORT}/ ./` });
    expect(again.withoutDocker).toEqual([2]);
    expect((await node2('echo "$(cat /run/docker.pid)"; command -v dockerd')).stdout).toBe(`${pidBefore.trim()}\n/usr/sbin/dockerd\n`);
  });

  it("leaves this machine's Docker packages, files, boot links and daemon as they were", async () => {
    expect(await hostDocker()).toBe(hostBefore);
  });
});
