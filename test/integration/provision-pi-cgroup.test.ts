// `pifaas provision` and the memory cgroup on a Raspberry Pi, on a 2-node lab: node 2 looks like a
// Pi 4 whose kernel starts without the memory cgroup (device tree, /boot/firmware/cmdline.txt, a
// kernel that enables it only with cgroup_enable=memory, an emulated reboot: every process of the
// node stops, SSH is refused for a few seconds, then sshd and dockerd start again); node 1 is a
// plain Linux box without the memory cgroup. All of it lives in the nodes' own mount namespaces
// and /usr overlays: this machine's /boot, /sys/firmware, /proc and reboot are never touched.
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labNodeExec, labUp, type Lab } from '../../src/lab/lab.js';
import type { ClusterStatus } from '../../src/swarm/cluster-status.js';
import type { ProvisionResult } from '../../src/swarm/provision.js';
import { jsonOutput, runCli } from '../lab/run-cli.js';

const LAB = 't3c';
const SUBNET = '10.97.0.0/24';
const MODEL = 'Raspberry Pi 4 Model B Rev 1.4';
const FLAGS = 'cgroup_enable=memory cgroup_memory=1';
let dir: string;
let lab: Lab;
let cmdlineBefore: string;
const ignored = '# the firmware reads only the first line';

const pi = (script: string) => labNodeExec(LAB, 't3c-2', script, { timeoutMs: 60_000 }).then((r) => r.stdout);
const plain = (script: string) => labNodeExec(LAB, 't3c-1', script, { timeoutMs: 60_000 }).then((r) => r.stdout);
/** What a boot changes: sshd's and dockerd's pids, the boot counter the emulated kernel keeps, the boot id. */
const bootState = (run: typeof pi) => run('echo "$(cat /run/sshd.pid) $(cat /run/docker.pid) $(cat /var/lib/pifaas-lab/boot-count) $(cat /proc/sys/kernel/random/boot_id)"').then((s) => s.trim().split(' '));
// The CLI runs with HOME in the test's dir: the OpenFaaS credentials provision saves stay there.
const cli = (...args: string[]) => runCli([...args, '--connect-retry', '2'], { env: { HOME: dir } });

async function provisionJson(...flags: string[]): Promise<{ code: number; result: ProvisionResult }> {
  const r = await cli('provision', lab.inventoryFile, '--json', ...flags);
  return { code: r.code, result: jsonOutput<ProvisionResult>(r) };
}

/** This machine's own view: its /boot, /sys/firmware, reboot, memory cgroup, command line and boot. */
async function hostView(): Promise<string> {
  const proc = await Promise.all(['/proc/cmdline', '/proc/sys/kernel/random/boot_id', '/proc/cgroups'].map((f) => readFile(f, 'utf8')));
  const memory = /^memory\t.*\t(\d)$/m.exec(proc[2] ?? '')?.[1];
  return JSON.stringify([await readdir('/boot'), await readdir('/sys/firmware'), await readlink('/usr/sbin/reboot'), proc[0], proc[1], memory]);
}
let hostBefore: string;

beforeAll(async () => {
  hostBefore = await hostView();
  dir = await mkdtemp(path.join(tmpdir(), 'pifaas-t3-pi-cgroup-'));
  lab = await labUp({ name: LAB, nodes: 2, subnet: SUBNET, dir, pi: [2], withoutMemoryCgroup: [1, 2] });
}, 5 * 60_000);

afterAll(async () => {
  await labDown(LAB);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('pifaas provision and the memory cgroup on a Raspberry Pi (lab node with an emulated Pi and reboot)', () => {
  it('the lab node looks like a Pi without the memory cgroup, in its own namespace only', async () => {
    expect(lab.pi).toEqual([2]);
    expect(await pi(`tr -d '\\0' < /sys/firmware/devicetree/base/model`)).toBe(MODEL);
    cmdlineBefore = await pi('cat /boot/firmware/cmdline.txt');
    expect(cmdlineBefore).toMatch(/^console=serial0,115200 console=tty1 root=PARTUUID=[0-9a-f]{8}-02 rootfstype=ext4 fsck\.repair=yes rootwait\n$/);
    expect(await pi('cat /proc/cmdline')).toBe(cmdlineBefore);
    expect(await pi(`awk '$1 == "memory" {print $4}' /proc/cgroups`)).toBe('0\n');
    // The plain node: no memory cgroup, no device tree, no boot partition.
    expect(await plain(`awk '$1 == "memory" {print $4}' /proc/cgroups; ls -A /boot | wc -l; test -e /sys/firmware/devicetree || echo no device tree`)).toBe('0\n0\nno device tree\n');
    expect((await bootState(pi))[2]).toBe('1');
    // `reboot` as a non-root user is refused, as on a real host.
    expect((await labNodeExec(LAB, 't3c-2', 'runuser -u pi -- reboot', { check: false })).stderr).toContain('Access denied');
    expect(await hostView()).toBe(hostBefore);
    await expect(labUp({ name: 't3cx', nodes: 2, subnet: '10.97.1.0/24', dir, pi: [3] })).rejects.toThrow('--pi 3: not a node of this lab (nodes are 1 to 2)');
    const help = await runCli(['lab', 'up', '--help']);
    expect(help.stdout).toMatch(/--pi <nodes> +node numbers/);
    expect(help.stdout).toContain('--without-memory-cgroup <nodes>');
    expect(help.stdout).toContain('pifaas lab up --nodes 2 --pi 2 --without-memory-cgroup 2');
  });

  it('without --fix-cgroups: a warning naming the Pi and --fix-cgroups, the node is provisioned, cmdline.txt unchanged, no reboot', async () => {
    const before = await bootState(pi);
    const r = await cli('provision', lab.inventoryFile);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `warning: t3c-2: the memory cgroup is not enabled on this ${MODEL}, so container memory limits will not apply; re-run with --fix-cgroups (or set pifaas_fix_cgroups: true) to add ${FLAGS} to /boot/firmware/cmdline.txt and reboot the node`,
    );
    // Not a Pi: only a warning, nothing pifaas can fix.
    expect(r.stdout).toContain('warning: t3c-1: the memory cgroup is not enabled; container memory limits will not apply (enable it on the kernel command line)');
    expect(r.stdout).toMatch(/^t3c-2 +worker +changed +.*joined the swarm as worker/m);
    expect(await pi('cat /boot/firmware/cmdline.txt')).toBe(cmdlineBefore);
    // No reboot: the same sshd, boot count and boot id (dockerd was restarted for daemon.json).
    const after = await bootState(pi);
    expect([after[0], after[2], after[3]]).toEqual([before[0], before[2], before[3]]);
  });

  it('with --fix-cgroups: the flags go into cmdline.txt once, the Pi reboots, provision waits for it and finishes', async () => {
    // A second line: the firmware ignores it, and pifaas must not join it into the first.
    await pi(`echo '${ignored}' >> /boot/firmware/cmdline.txt`);
    const piBefore = await bootState(pi);
    const plainBefore = await bootState(plain);
    const { code, result } = await provisionJson('--fix-cgroups');
    expect(code).toBe(0);
    expect(result.ok).toBe(true);
    const node = result.nodes.find((n) => n.name === 't3c-2');
    expect(node?.status).toBe('changed');
    expect(node?.changes).toEqual([`added ${FLAGS} to /boot/firmware/cmdline.txt and rebooted`]);
    expect(node?.warnings).toEqual([]);
    expect(node?.facts).toMatchObject({ piModel: MODEL, memoryCgroup: true, cmdlineFile: '/boot/firmware/cmdline.txt', bootedWithMemoryCgroupFlag: true });
    expect(node?.facts?.bootId).not.toBe(piBefore[3]);
    // The plain node is not rebooted: it only warns.
    const other = result.nodes.find((n) => n.name === 't3c-1');
    expect(other?.warnings[0]).toMatch(/^t3c-1: the memory cgroup is not enabled;/);
    expect(await bootState(plain)).toEqual(plainBefore);

    expect(await pi('cat /boot/firmware/cmdline.txt')).toBe(`${cmdlineBefore.trim()} ${FLAGS}\n${ignored}\n`);
    const after = await bootState(pi);
    expect(after[0]).not.toBe(piBefore[0]); // a new sshd
    expect(after[1]).not.toBe(piBefore[1]); // a new dockerd
    expect(after[2]).toBe('2'); // one reboot
    expect(after[3]).toBe(node?.facts?.bootId);
    expect(await pi(`awk '$1 == "memory" {print $4}' /proc/cgroups; cat /proc/cmdline`)).toBe(`1\n${cmdlineBefore.trim()} ${FLAGS}\n`);
    expect(await pi('cat /var/log/pifaas-lab-boot.log')).toMatch(/reboot: stopping every process of t3c-2\n.*down\n.*boot 2: memory cgroup on;/);

    // Back in the swarm and Ready.
    const s = await cli('status', lab.inventoryFile, '--json');
    expect(s.code).toBe(0);
    expect((JSON.parse(s.stdout) as ClusterStatus).nodes.map((n) => [n.name, n.state])).toEqual([
      ['t3c-1', 'ready'],
      ['t3c-2', 'ready'],
    ]);
  });

  it('a second run changes nothing and reboots nothing', async () => {
    const before = await bootState(pi);
    const { code, result } = await provisionJson('--fix-cgroups');
    expect(code).toBe(0);
    expect(result.nodes.map((n) => [n.name, n.status, n.changes])).toEqual([
      ['t3c-1', 'unchanged', []],
      ['t3c-2', 'unchanged', []],
    ]);
    expect(await bootState(pi)).toEqual(before);
    expect(await pi('cat /boot/firmware/cmdline.txt')).toBe(`${cmdlineBefore.trim()} ${FLAGS}\n${ignored}\n`);
    expect(await hostView()).toBe(hostBefore);
  });

  it('a kernel that was booted with the flags and still lacks the memory cgroup is an error, not a reboot loop', async () => {
    // A kernel built without the memory cgroup; the node is rebooted by hand.
    await pi('touch /var/lib/pifaas-lab/kernel-without-memory-cgroup && systemctl reboot');
    for (let i = 0; i < 60 && !/boot 3: memory cgroup off;.*\n(.*\n)*.*up\n$/.test(await pi('cat /var/log/pifaas-lab-boot.log').catch(() => '')); i++) {
      await new Promise((r) => setTimeout(r, 500));
    }
    const before = await bootState(pi);
    expect(before[2]).toBe('3');
    const { code, result } = await provisionJson('--fix-cgroups');
    expect(code).toBe(1);
    const node = result.nodes.find((n) => n.name === 't3c-2');
    expect(node?.status).toBe('failed');
    expect(node?.error?.message).toBe('t3c-2: the kernel was booted with cgroup_enable=memory (from /boot/firmware/cmdline.txt) and the memory cgroup is still not enabled');
    expect(node?.error?.hint).toContain('cgroup_disable=memory');
    expect(result.nodes.find((n) => n.name === 't3c-1')?.status).toBe('unchanged');
    expect(await bootState(pi)).toEqual(before);
    expect(await pi('cat /boot/firmware/cmdline.txt')).toBe(`${cmdlineBefore.trim()} ${FLAGS}\n${ignored}\n`);
  });
});
