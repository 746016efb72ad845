// Why: the OpenFaaS stack is tested on a real single-node Docker swarm: a dockerd of its own (data
// root, exec root, socket and pid file under pifaas-t4 names, no iptables changes, no default bridge),
// started for the suite and removed after it, plus small local images built from busybox (no image
// can be pulled here).
import { spawn, type ChildProcess } from 'node:child_process';
import { access, cp, mkdir, mkdtemp, open, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';

export const T4_DATA_ROOT = '/var/lib/pifaas-t4';
export const T4_EXEC_ROOT = '/run/pifaas-t4';
export const T4_SOCKET = `${T4_EXEC_ROOT}/docker.sock`;
export const T4_PIDFILE = '/run/pifaas-t4.pid';

export interface TestDockerd {
  docker: Docker;
  socket: string;
  stop(): Promise<void>;
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/** Starts a fresh dockerd (earlier state wiped) and makes it a one-node swarm manager. */
export async function startTestDockerd(): Promise<TestDockerd> {
  if (await exists(T4_PIDFILE)) throw new Error(`${T4_PIDFILE} exists: another pifaas-t4 dockerd runs (stop it first)`);
  await rm(T4_DATA_ROOT, { recursive: true, force: true });
  await mkdir(T4_DATA_ROOT, { recursive: true });
  await mkdir(T4_EXEC_ROOT, { recursive: true });
  const log = await open(path.join(tmpdir(), 'pifaas-t4-dockerd.log'), 'w');
  const child: ChildProcess = spawn(
    'dockerd',
    ['--data-root', T4_DATA_ROOT, '--exec-root', T4_EXEC_ROOT, '--pidfile', T4_PIDFILE, '-H', `unix://${T4_SOCKET}`, '--iptables=false', '--bridge=none'],
    { stdio: ['ignore', log.fd, log.fd] },
  );
  // dockerd has its own copy of the descriptor now; ours would otherwise wait for the garbage collector.
  await log.close();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const docker = new Docker({ socketPath: T4_SOCKET });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await docker.ping();
      break;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`dockerd did not start; see ${path.join(tmpdir(), 'pifaas-t4-dockerd.log')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  // Ports of their own: another swarm in this network namespace would hold 2377 and 4789.
  await docker.swarmInit({ ListenAddr: '127.0.0.1:2477', AdvertiseAddr: '127.0.0.1:2477', DataPathPort: 4794 });
  return {
    docker,
    socket: T4_SOCKET,
    async stop() {
      try {
        await docker.swarmLeave({ force: true });
      } catch {}
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      await log.close();
      await rm(path.join(tmpdir(), 'pifaas-t4-dockerd.log'), { force: true });
      await rm(T4_DATA_ROOT, { recursive: true, force: true });
      await rm(T4_EXEC_ROOT, { recursive: true, force: true });
      await rm(T4_PIDFILE, { force: true });
    },
  };
}

/**
 * Imports a busybox image. With `foreignEntrypoint`, its entrypoint is busybox with the ELF machine
 * field changed to one no CPU (and no qemu binfmt entry) runs: starting it fails with
 * "exec format error", exactly as an image built for another CPU does.
 */
export async function importBusyboxImage(docker: Docker, name: string, opts: { foreignEntrypoint?: boolean; cmd?: string[] } = {}): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 't4-rootfs-'));
  try {
    await mkdir(path.join(dir, 'bin'));
    await cp('/bin/busybox', path.join(dir, 'bin/busybox'));
    await symlink('busybox', path.join(dir, 'bin/sh'));
    const changes: string[] = [];
    if (opts.foreignEntrypoint) {
      await cp('/bin/busybox', path.join(dir, 'bin/foreign'));
      const f = await open(path.join(dir, 'bin/foreign'), 'r+');
      // e_machine (offset 18, 2 bytes little-endian): 0x1234 is no real architecture.
      await f.write(Buffer.from([0x34, 0x12]), 0, 2, 18);
      await f.close();
      changes.push('ENTRYPOINT ["/bin/foreign"]');
    } else {
      changes.push('ENTRYPOINT ["/bin/busybox"]');
    }
    if (opts.cmd) changes.push(`CMD ${JSON.stringify(opts.cmd)}`);
    const tar = spawn('tar', ['-C', dir, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [repo, tag] = name.split(':');
    const stream = await docker.importImage(tar.stdout as unknown as string, { repo, tag: tag ?? 'latest', changes } as Record<string, unknown>);
    await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve())));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
