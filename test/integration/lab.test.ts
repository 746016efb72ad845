// The lab and the SSH layer on real parts: nodes in network namespaces with OpenSSH's sshd and
// Debian's dockerd, reached through ssh2 (keys, agent, ProxyJump, known_hosts, sudo), Docker over
// the SSH-forwarded socket, a swarm service on an overlay network published in host mode.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInventory, type Inventory } from '../../src/inventory/inventory.js';
import { labDown, labNodeExec, labUp, writeLabInventory, type Lab } from '../../src/lab/lab.js';
import { commandLineOf, listProcesses } from '../../src/lab/lab-processes.js';
import { readLabState, writeLabState, type LabState } from '../../src/lab/lab-state.js';
import { dockerFor } from '../../src/operator/docker-client.js';
import { LocalOperator } from '../../src/operator/local-operator.js';
import type { Operator } from '../../src/operator/operator.js';
import { SshOperator } from '../../src/operator/ssh-operator.js';
import { InventoryConnector } from '../../src/ssh/inventory-connect.js';
import { resolveSshTarget, loadSshConfig } from '../../src/ssh/ssh-config.js';
import { provision } from '../../src/swarm/provision.js';
import { busyboxRootfsTar, importImage } from '../lab/busybox-image.js';
import { jsonOutput, runCli } from '../lab/run-cli.js';

const LAB = 't3l';
const SUBNET = '10.93.1.0/24';
const host = new LocalOperator();
let dir: string;
let lab: Lab;
let inventory: Inventory;
const open: Operator[] = [];

async function connect(name: string, opts: { user?: string; becomePassword?: string; knownHostsFile?: string; acceptNew?: boolean } = {}): Promise<Operator> {
  const h0 = inventory.hosts.find((x) => x.name === name);
  if (!h0) throw new Error(`no host ${name}`);
  const h = {
    ...h0,
    user: opts.user ?? h0.user,
    becomePassword: opts.becomePassword ?? (opts.user ? undefined : h0.becomePassword),
    settings: { ...h0.settings, known_hosts_file: opts.knownHostsFile ?? h0.settings.known_hosts_file },
  };
  const op = await new InventoryConnector(inventory, { acceptNewHostKeys: opts.acceptNew, connectRetryMs: 0 }).connect(h);
  open.push(op);
  return op;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pifaas-t3-lab-'));
  lab = await labUp({ name: LAB, nodes: 3, subnet: SUBNET, dir });
  inventory = await loadInventory(lab.inventoryFile);
});

afterAll(async () => {
  await Promise.all(open.map((o) => o.close()));
  await labDown(LAB);
  await labDown('t3k');
  await labDown('t3d');
  await labDown('t3w');
  await rm(dir, { recursive: true, force: true });
});

describe('pifaas lab', () => {
  it('gives every node its own hostname, /etc and sshd, reachable with the lab key and known_hosts', async () => {
    expect(lab.nodes.map((n) => [n.name, n.role, n.address])).toEqual([
      ['t3l-1', 'manager', '10.93.1.11'],
      ['t3l-2', 'worker', '10.93.1.12'],
      ['t3l-3', 'worker', '10.93.1.13'],
    ]);
    const [a, b] = [await connect('t3l-1'), await connect('t3l-2')];
    expect((await a.run('hostname; cat /etc/hostname')).stdout).toBe('t3l-1\nt3l-1\n');
    expect((await b.run('hostname')).stdout).toBe('t3l-2\n');
    await a.writeFile('/etc/docker/pifaas-lab-probe', 'node 1 only\n', { sudo: true });
    expect((await a.readFile('/etc/docker/pifaas-lab-probe'))?.toString()).toBe('node 1 only\n');
    expect(await b.readFile('/etc/docker/pifaas-lab-probe')).toBeUndefined();
    expect(existsSync('/etc/docker/pifaas-lab-probe')).toBe(false);
    await a.run('rm -f /etc/docker/pifaas-lab-probe', { sudo: true });
    // The inventory the lab wrote is a normal pifaas inventory, 0600 (it holds the lab's sudo password).
    expect(inventory.managers.map((h) => h.name)).toEqual(['t3l-1']);
    expect(((await host.run(`stat -c %a ${lab.inventoryFile}`)).stdout.trim())).toBe('600');
  });

  it('has root, pi (sudo with a password) and ops (passwordless sudo); sudo gets the password on stdin only', async () => {
    const root = await connect('t3l-2', { user: 'root' });
    expect((await root.run('id -un')).stdout).toBe('root\n');
    const ops = await connect('t3l-2', { user: 'ops' });
    expect((await ops.run('id -u', { sudo: true })).stdout).toBe('0\n');
    const pi = await connect('t3l-2');
    expect((await pi.run('id -un')).stdout).toBe('pi\n');
    // stdin reaches the command behind sudo, and the password appears in no process's argv meanwhile
    const running = pi.run('sleep 1; cat; id -u', { sudo: true, stdin: 'through sudo\n' });
    await new Promise((r) => setTimeout(r, 600));
    const argvs = await Promise.all((await listProcesses()).map((p) => commandLineOf(p.pid)));
    expect(argvs.some((a) => a.includes(lab.piPassword))).toBe(false);
    expect((await running).stdout).toBe('through sudo\n0\n');
    // A second sudo on the same connection (credentials possibly cached) works the same way
    expect((await pi.run('cat', { sudo: true, stdin: 'again' })).stdout).toBe('again');
  });

  it('says clearly when the sudo password is wrong or missing', async () => {
    const wrong = await connect('t3l-3', { becomePassword: 'not-the-password' });
    await expect(wrong.run('true', { sudo: true })).rejects.toThrow('t3l-3: sudo rejected the password for user pi');
    const h = inventory.hosts.find((x) => x.name === 't3l-3');
    if (!h) throw new Error('no host');
    const none = await new InventoryConnector(inventory, { connectRetryMs: 0 }).connect({ ...h, becomePassword: undefined });
    open.push(none);
    const saved = process.env.PIFAAS_BECOME_PASSWORD;
    delete process.env.PIFAAS_BECOME_PASSWORD;
    try {
      await expect(none.run('true', { sudo: true })).rejects.toThrow('t3l-3: sudo needs a password for user pi, and none was given');
    } finally {
      if (saved !== undefined) process.env.PIFAAS_BECOME_PASSWORD = saved;
    }
  });

  it("reaches each node's Docker API through its forwarded /var/run/docker.sock (never TCP)", async () => {
    const root = await connect('t3l-3', { user: 'root' });
    const v = (await dockerFor(root).version()) as { Version: string };
    expect(v.Version).toMatch(/^\d+\.\d+/);
    const info = (await dockerFor(root).info()) as { Name: string };
    expect(info.Name).toBe('t3l-3');
    const listening = await labNodeExec(LAB, 't3l-3', 'ss -Hltn | awk \'{print $4}\'');
    expect(listening.stdout).not.toMatch(/:2375|:2376/);
    // pi is not in the docker group yet (provision adds it): a clear message, not a hang
    const pi = await connect('t3l-3');
    await expect(dockerFor(pi).version()).rejects.toThrow(/t3l-3: cannot open \/var\/run\/docker.sock over SSH as pi/);
  });

  it('lets an SSH session restart dockerd the Debian way (service docker restart, no systemd)', async () => {
    const pi = await connect('t3l-3');
    const before = (await pi.run('cat /run/docker.pid', { sudo: true })).stdout.trim();
    await pi.run('service docker restart', { sudo: true, timeoutMs: 120_000 });
    await pi.run('for i in $(seq 100); do docker version >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1', { sudo: true });
    const after = (await pi.run('cat /run/docker.pid', { sudo: true })).stdout.trim();
    expect(after).not.toBe(before);
    expect((await host.run(`cat /proc/${after}/comm`)).stdout.trim()).toBe('dockerd');
  });

  it('keeps retrying, with backoff, while a node is unreachable (rebooting), and connects once sshd is back', async () => {
    await labNodeExec(LAB, 't3l-2', 'service ssh stop >/dev/null');
    const h = inventory.hosts.find((x) => x.name === 't3l-2');
    if (!h) throw new Error('no host');
    const started = Date.now();
    const pending = new InventoryConnector(inventory, { connectRetryMs: 30_000 }).connect(h);
    await new Promise((r) => setTimeout(r, 2500));
    await labNodeExec(LAB, 't3l-2', 'service ssh start >/dev/null');
    const op = await pending;
    open.push(op);
    expect(Date.now() - started).toBeGreaterThan(2500);
    expect((await op.run('hostname')).stdout).toBe('t3l-2\n');
    // Without retries the same situation fails at once, naming the node.
    await labNodeExec(LAB, 't3l-2', 'service ssh stop >/dev/null');
    try {
      await expect(new InventoryConnector(inventory, { connectRetryMs: 0 }).connect(h)).rejects.toThrow('t3l-2: cannot reach sshd at 10.93.1.12:22: connect ECONNREFUSED 10.93.1.12:22');
    } finally {
      await labNodeExec(LAB, 't3l-2', 'service ssh start >/dev/null');
    }
  });

  it('checks host keys: unknown refused (fingerprint shown) unless accepted, recorded, and a changed key refused', async () => {
    const kh = path.join(dir, 'tofu_known_hosts');
    await expect(connect('t3l-2', { knownHostsFile: kh })).rejects.toThrow(/t3l-2: the host key of 10\.93\.1\.12:22 is not known yet \(ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}\)/);
    expect(existsSync(kh)).toBe(false);
    await connect('t3l-2', { knownHostsFile: kh, acceptNew: true });
    const recorded = await readFile(kh, 'utf8');
    expect(recorded).toBe((await readFile(lab.knownHostsFile, 'utf8')).split('\n').find((l) => l.startsWith('10.93.1.12 ')) + '\n');
    await connect('t3l-2', { knownHostsFile: kh }); // now known: no flag needed
    // Another key recorded for that address: refused even with --accept-new-host-keys.
    const otherKey = (await readFile(lab.knownHostsFile, 'utf8')).split('\n').find((l) => l.startsWith('10.93.1.11 '))?.split(' ').slice(1).join(' ');
    await writeFile(kh, `10.93.1.12 ${otherKey}\n`);
    await expect(connect('t3l-2', { knownHostsFile: kh, acceptNew: true })).rejects.toThrow(/the host key of 10\.93\.1\.12:22 has CHANGED/);
  });

  it('asks at a terminal about an unknown host key: a no is refused, a yes is recorded', async () => {
    const kh = path.join(dir, 'prompt_known_hosts');
    const inv = path.join(dir, 'inventory-prompt.yaml');
    await writeLabInventory(lab, inv, { knownHostsFile: kh });
    // `pifaas status` (it connects to the manager, t3l-1), on a real terminal: util-linux `script` gives
    // the CLI a pty on stdin and stderr, and the test answers the question when it shows.
    const QUESTION = 'Record this key and connect? [y/N]';
    const statusAnswering = (answer: string) =>
      new Promise<string>((resolve) => {
        const cli = `${process.execPath} --import tsx ${fileURLToPath(new URL('../lab/cli-entry.ts', import.meta.url))} status ${inv} --connect-retry 0`;
        const child = spawn('script', ['-qefc', cli, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
        let screen = '';
        child.stdout.on('data', (d: Buffer) => {
          const had = screen.includes(QUESTION);
          screen += d.toString();
          if (!had && screen.includes(QUESTION)) child.stdin.write(`${answer}\r`);
        });
        child.on('close', () => resolve(screen));
      });
    const asked = new RegExp(`The authenticity of host t3l-1 \\(10\\.93\\.1\\.11:22\\) can't be established\\.\r\nssh-ed25519 key fingerprint is SHA256:[A-Za-z0-9+/]{43}\\.\r\n`);
    const no = await statusAnswering('n');
    expect(no).toMatch(asked);
    expect(no).toMatch(/\n {2}t3l-1: the host key of 10\.93\.1\.11:22 is not known yet/);
    // What to do about it, not "provision first" (the swarm may be fine).
    expect(no).toMatch(/hint: compare the fingerprint with the node's \(`ssh-keygen -lf \/etc\/ssh\/ssh_host_ed25519_key\.pub` on it\), then re-run with --accept-new-host-keys/);
    expect(no).not.toContain('pifaas provision');
    expect(existsSync(kh)).toBe(false);
    const yes = await statusAnswering('yes');
    expect(yes).toMatch(asked);
    expect(yes).not.toContain('is not known yet');
    // Recorded exactly as the node's key; a third run asks nothing.
    const labKeys = (await readFile(lab.knownHostsFile, 'utf8')).split('\n');
    expect(await readFile(kh, 'utf8')).toBe(`${labKeys.find((l) => l.startsWith('10.93.1.11 '))}\n`);
    expect(await statusAnswering('n')).not.toContain(QUESTION);
    // Another key recorded for the manager: refused, with how to clear the old key if the node was reinstalled.
    await writeFile(kh, `10.93.1.11 ${labKeys.find((l) => l.startsWith('10.93.1.12 '))?.split(' ').slice(1).join(' ')}\n`);
    const changed = await statusAnswering('y');
    expect(changed).not.toContain(QUESTION);
    expect(changed).toMatch(/\n {2}t3l-1: the host key of 10\.93\.1\.11:22 has CHANGED/);
    expect(changed).toContain(`hint: if the node was reinstalled (or its SD card re-burnt), remove the old key with \`ssh-keygen -R '10.93.1.11' -f ${kh}\``);
  });

  it('logs in with a key from ssh-agent, an encrypted key (passphrase from the environment), and through a ProxyJump host', async () => {
    const work = await mkdtemp(path.join(dir, 'auth-'));
    const agentSock = path.join(work, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50 && !existsSync(agentSock); i++) await new Promise((r) => setTimeout(r, 100));
      await host.run(`SSH_AUTH_SOCK=${agentSock} ssh-add -q ${lab.sshKeyFile}`);
      const target = { ...resolveSshTarget({ address: '10.93.1.11', user: 'pi', knownHostsFile: lab.knownHostsFile }, { file: 'none' }), identityFiles: [] };
      const viaAgent = await SshOperator.connect(target, { name: 'agent', agentSocket: agentSock, hostKeys: { acceptNew: false } });
      open.push(viaAgent);
      expect((await viaAgent.run('hostname')).stdout).toBe('t3l-1\n');

      const encrypted = path.join(work, 'id_encrypted');
      await copyFile(lab.sshKeyFile, encrypted);
      await host.run(`chmod 600 ${encrypted} && ssh-keygen -q -p -P '' -N 'correct horse' -f ${encrypted}`);
      // Through the inventory path: ansible_ssh_private_key_file is encrypted, PIFAAS_SSH_PASSPHRASE unlocks it.
      const h0 = inventory.hosts.find((x) => x.name === 't3l-2');
      if (!h0) throw new Error('no host');
      const encHost = { ...h0, user: 'ops', privateKeyFile: encrypted, becomePassword: undefined };
      const savedAgent = process.env.SSH_AUTH_SOCK;
      delete process.env.SSH_AUTH_SOCK;
      try {
        process.env.PIFAAS_SSH_PASSPHRASE = 'correct horse';
        const withPass = await new InventoryConnector(inventory, { connectRetryMs: 0 }).connect(encHost);
        open.push(withPass);
        expect((await withPass.run('id -un')).stdout).toBe('ops\n');
        process.env.PIFAAS_SSH_PASSPHRASE = 'wrong';
        await expect(new InventoryConnector(inventory, { connectRetryMs: 0 }).connect(encHost)).rejects.toThrow(`the passphrase for SSH key ${encrypted} is wrong`);
        delete process.env.PIFAAS_SSH_PASSPHRASE;
        await expect(new InventoryConnector(inventory, { connectRetryMs: 0 }).connect(encHost)).rejects.toThrow(
          /t3l-2: SSH login as ops@10\.93\.1\.12:22 was refused .*encrypted; no passphrase given/,
        );
      } finally {
        delete process.env.PIFAAS_SSH_PASSPHRASE;
        if (savedAgent !== undefined) process.env.SSH_AUTH_SOCK = savedAgent;
      }

      const cfg = path.join(work, 'ssh_config');
      await writeFile(cfg, `Host node3\n  HostName 10.93.1.13\n  User root\n  IdentityFile ${lab.sshKeyFile}\n  ProxyJump pi@10.93.1.11\nHost 10.93.1.11\n  IdentityFile ${lab.sshKeyFile}\n`);
      const jumpTarget = resolveSshTarget({ address: 'node3', knownHostsFile: lab.knownHostsFile }, loadSshConfig(cfg));
      const jumped = await SshOperator.connect(jumpTarget, { name: 'node3', hostKeys: { acceptNew: false } });
      open.push(jumped);
      expect((await jumped.run('hostname; echo $SSH_CLIENT')).stdout).toMatch(/^t3l-3\n10\.93\.1\.11 /);
    } finally {
      agent.kill();
    }
  });

  it('runs a swarm service on an overlay network, published in host mode and reachable from this machine at each node address', async () => {
    const result = await provision(inventory, { connector: new InventoryConnector(inventory, { connectRetryMs: 5000 }), renderer: 'silent', keepConnections: true });
    expect(result.nodes.map((n) => [n.name, n.status, n.error?.message])).toEqual([
      ['t3l-1', 'changed', undefined],
      ['t3l-2', 'changed', undefined],
      ['t3l-3', 'changed', undefined],
    ]);
    const members = result.members ?? [];
    try {
      const tar = await busyboxRootfsTar();
      await Promise.all(members.map((m) => importImage(m.docker, tar, 'pifaas-lab/busybox', 'test')));
      const manager = members.find((m) => m.host.role === 'manager');
      if (!manager) throw new Error('no manager');
      const docker = manager.docker;
      await docker.createNetwork({ Name: 't3l-net', Driver: 'overlay', Attachable: true });
      await docker.createService({
        Name: 'web',
        TaskTemplate: {
          ContainerSpec: {
            Image: 'pifaas-lab/busybox:test',
            Hostname: '{{.Node.Hostname}}',
            Command: ['/bin/sh', '-c', 'hostname > /www/index.html && exec httpd -f -p 8080 -h /www'],
          },
          Networks: [{ Target: 't3l-net' }],
        },
        Mode: { Global: {} },
        EndpointSpec: { Mode: 'dnsrr', Ports: [{ Protocol: 'tcp', TargetPort: 8080, PublishedPort: 18080, PublishMode: 'host' }] },
      } as never);
      // From this machine, each node address answers with that node's own task.
      const fetchBody = async (url: string) => {
        for (let i = 0; i < 120; i++) {
          try {
            const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
            if (r.ok) return (await r.text()).trim();
          } catch {
            /* task not up yet */
          }
          await new Promise((r) => setTimeout(r, 500));
        }
        throw new Error(`${url} never answered`);
      };
      expect(await Promise.all(lab.nodes.map((n) => fetchBody(`http://${n.address}:18080/`)))).toEqual(['t3l-1', 't3l-2', 't3l-3']);
      // Over the overlay network (vxlan between the nodes), the task on node 1 reaches the others by service DNS (dnsrr).
      const [container] = await docker.listContainers({ filters: { label: ['com.docker.swarm.service.name=web'] } });
      if (!container) throw new Error('no task container on the manager');
      const exec = await docker.getContainer(container.Id).exec({
        Cmd: ['/bin/sh', '-c', 'for ip in $(nslookup tasks.web 127.0.0.11 | sed -n "s/^Address[^:]*: *\\([0-9.]*\\).*/\\1/p" | grep -v "^127\\."); do wget -qO- http://$ip:8080/; done | sort'],
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = await exec.start({ hijack: true, stdin: false });
      const chunks: Buffer[] = [];
      const stdout = new (await import('node:stream')).PassThrough();
      stdout.on('data', (c: Buffer) => chunks.push(c));
      docker.modem.demuxStream(stream, stdout, stdout);
      await new Promise((r) => stream.on('end', r));
      expect(Buffer.concat(chunks).toString().trim().split('\n')).toEqual(['t3l-1', 't3l-2', 't3l-3']);
      await docker.getService('web').remove();
    } finally {
      await Promise.all(members.map((m) => m.operator.close()));
    }
  });

  it('up is idempotent: the same settings give back the running lab unchanged', async () => {
    const before = await readLabState(LAB);
    const again = await labUp({ name: LAB, nodes: 3, subnet: SUBNET, dir });
    expect(again).toEqual(lab);
    expect((await readLabState(LAB))?.nodes).toEqual(before?.nodes);
    const ls = await runCli(['lab', 'ls', '--json']);
    expect(ls.code).toBe(0);
    const mine = (JSON.parse(ls.stdout) as { name: string; nodes: { running: boolean }[] }[]).find((l) => l.name === LAB);
    expect(mine?.nodes.map((n) => n.running)).toEqual([true, true, true]);
  });

  it('up with another node count refuses, naming what runs, and leaves the running lab as it is', async () => {
    const before = await readLabState(LAB);
    const hostKeys = await readFile(lab.knownHostsFile, 'utf8');
    const r = await runCli(['lab', 'up', '--name', LAB, '--subnet', SUBNET, '--dir', dir, '--nodes', '4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: lab ${LAB} is already up with --nodes 3, not 4; it was left as it is\n`);
    expect(r.stderr).toContain(`hint: to make it again with these settings (its nodes and everything on them are lost): sudo pifaas lab down --name ${LAB}`);
    const j = await runCli(['lab', 'up', '--name', LAB, '--subnet', SUBNET, '--dir', dir, '--nodes', '4', '--user', 'root', '--json']);
    expect([j.code, j.stdout]).toEqual([1, '']);
    expect(JSON.parse(j.stderr)).toMatchObject({ error: `lab ${LAB} is already up with --nodes 3, not 4; --user pi, not root; it was left as it is` });
    expect((await readLabState(LAB))?.nodes).toEqual(before?.nodes);
    expect(await readFile(lab.knownHostsFile, 'utf8')).toBe(hostKeys);
    expect((await (await connect('t3l-3', { user: 'root' })).run('hostname')).stdout).toBe('t3l-3\n');
  });

  it("makes a lab while the caller's Docker client points elsewhere (DOCKER_HOST, DOCKER_CONTEXT...): each node's docker uses its own dockerd", async () => {
    // `pifaas build`/`push` users may have these set; none of them reaches a node.
    const env = {
      DOCKER_HOST: 'unix:///tmp/pifaas-no-such-docker.sock',
      DOCKER_CONTEXT: 'pifaas-no-such-context',
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: '/nonexistent/pifaas-certs',
      DOCKER_CONFIG: '/nonexistent/pifaas-docker-config',
    };
    const args = ['lab', 'up', '--name', 't3d', '--subnet', '10.93.5.0/24', '--nodes', '1', '--dir', path.join(dir, 't3d'), '--json'];
    const up = await runCli(args, { env });
    expect(up.code, up.stderr).toBe(0);
    expect(jsonOutput<Lab>(up).nodes.map((n) => n.name)).toEqual(['t3d-1']);
    expect((await labNodeExec('t3d', 't3d-1', 'docker info --format "{{.Name}}"; env | grep -c ^DOCKER_ || true')).stdout).toBe('t3d-1\n0\n');
    // The same again: the running lab, its sshd and dockerd checked (with `docker version` in the node).
    const again = await runCli(args, { env });
    expect(again.code, again.stderr).toBe(0);
    expect(jsonOutput<Lab>(again).nodes).toEqual(jsonOutput<Lab>(up).nodes);
    expect(JSON.parse((await runCli(['lab', 'down', '--name', 't3d', '--json'])).stdout)).toMatchObject({ name: 't3d', found: true });
  });

  it('down removes a lab left behind by a killed process, next to a running lab, touching nothing else', async () => {
    const otherDir = await mkdtemp(path.join(tmpdir(), 'pifaas-t3-killed-'));
    const script = path.join(otherDir, 'up.mts');
    await writeFile(
      script,
      `import { labUp } from ${JSON.stringify(path.resolve('src/lab/lab.ts'))};\nawait labUp({ name: 't3k', nodes: 2, subnet: '10.93.3.0/24', dir: ${JSON.stringify(otherDir)} });\nconsole.log('UP');\nsetInterval(() => {}, 1000);\n`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('UP') && resolve());
      child.on('exit', (c) => reject(new Error(`lab up child exited ${c}`)));
    });
    child.kill('SIGKILL');
    const state = await readLabState('t3k');
    expect(state?.nodes.length).toBe(2);
    // Both labs run side by side, each with its own forward rule.
    const rules = (await host.run('iptables -w -S FORWARD')).stdout;
    expect(rules).toContain('-A FORWARD -i t3k-br -o t3k-br -j ACCEPT');
    expect(rules).toContain('-A FORWARD -i t3l-br -o t3l-br -j ACCEPT');
    const k = await SshOperator.connect(resolveSshTarget({ address: '10.93.3.12', user: 'root', privateKeyFile: path.join(otherDir, 'id_ed25519'), knownHostsFile: path.join(otherDir, 'known_hosts') }, { file: 'none' }), {
      name: 't3k-2',
      hostKeys: { acceptNew: false },
    });
    expect((await k.run('hostname')).stdout).toBe('t3k-2\n');
    await k.close();

    // Killed half-way through its making (the record says so): `up` makes it again, even with other
    // settings, where a complete running lab would be refused.
    await writeLabState({ ...(state as LabState), complete: false });
    const remade = await runCli(['lab', 'up', '--name', 't3k', '--nodes', '3', '--subnet', '10.93.3.0/24', '--dir', otherDir, '--json']);
    expect(remade.stderr).not.toMatch(/already up/);
    expect(remade.code).toBe(0);
    expect((await readLabState('t3k'))?.nodes.map((n) => n.name)).toEqual(['t3k-1', 't3k-2', 't3k-3']);
    expect((await readLabState('t3k'))?.complete).toBe(true);

    const down = await runCli(['lab', 'down', '--name', 't3k', '--json']);
    expect(down.code).toBe(0);
    expect(JSON.parse(down.stdout)).toMatchObject({ name: 't3k', found: true });
    const left = await Promise.all((await listProcesses()).map((p) => commandLineOf(p.pid)));
    expect(left.filter((a) => a.startsWith('pifaas-lab:t3k:'))).toEqual([]);
    expect((await host.run('ip -o link show')).stdout).not.toMatch(/t3k-/);
    const after = (await host.run('iptables -w -S FORWARD')).stdout;
    expect(after).not.toContain('t3k-br');
    expect(after).toContain('-A FORWARD -i t3l-br -o t3l-br -j ACCEPT');
    expect(await readLabState('t3k')).toBeUndefined();
    expect(existsSync(path.join(otherDir, 'nodes'))).toBe(false);
    // The other lab is untouched.
    expect((await (await connect('t3l-1', { user: 'root' })).run('hostname')).stdout).toBe('t3l-1\n');
    // Down again: nothing to remove, not an error.
    expect(JSON.parse((await runCli(['lab', 'down', '--name', 't3k', '--json'])).stdout)).toMatchObject({ found: false });
    await rm(otherDir, { recursive: true, force: true });
  });

  it('refuses clearly without root, and refuses a subnet another lab uses', async () => {
    const asNobody = (args: string[]) => runCli(args, { prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'], env: { HOME: '/tmp' } });
    const r = await asNobody(['lab', 'up', '--name', 't3n', '--subnet', '10.93.4.0/24']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: pifaas lab must run as root');
    expect(r.stderr).toContain('hint: run it with sudo');
    // down says the same (not EACCES and a stack trace), and leaves the running lab alone.
    const down = await asNobody(['lab', 'down', '--name', LAB]);
    expect([down.code, down.stderr]).toEqual([1, expect.stringContaining("error: pifaas lab must run as root (it stops the lab's daemons")]);
    expect(down.stderr).toContain('hint: run it with sudo');
    expect(down.stderr).not.toMatch(/EACCES|this is a bug|\n\s+at /);
    expect((await readLabState(LAB))?.nodes.length).toBe(3);
    // ls cannot read the labs' records without root: it says so, never "no labs" while one runs.
    const ls = await asNobody(['lab', 'ls']);
    expect([ls.code, ls.stderr]).toEqual([1, expect.stringContaining("error: pifaas lab must run as root (only root can read the labs' records")]);
    expect(ls.stderr).toContain('hint: run it with sudo');
    expect(ls.stdout).not.toContain('no labs');
    await expect(labUp({ name: 't3o', nodes: 1, subnet: '10.93.1.0/25', dir })).rejects.toThrow('lab subnet 10.93.1.0/25 overlaps 10.93.1.0/24 of lab "t3l"');
  });

  it('refuses nodes without Docker and no --apt-source (they could reach no mirror), saying what to pass', async () => {
    const r = await runCli(['lab', 'up', '--name', 't3w', '--subnet', '10.93.6.0/24', '--nodes', '2', '--without-docker', '2', '--dir', path.join(dir, 't3w')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: --without-docker 2 needs --apt-source: lab nodes have no route out, so apt there can only reach a mirror on the lab bridge (10.93.6.1)');
    expect(r.stderr).toContain('hint: serve a folder of .deb files');
    expect(r.stderr).toContain('--apt-source "deb [trusted=yes] http://10.93.6.1:8080/ ./"');
    expect(await readLabState('t3w')).toBeUndefined();
  });
});
