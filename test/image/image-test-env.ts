// Why: the image tests and bench/image-figures.ts need a Docker daemon of their own, a registry that
// stands in for Docker Hub (holding the stand-in node:20-bookworm-slim for three platforms), and ARM
// emulation. This starts what is not already running, and stop() undoes exactly what start did:
// the daemon (own data root, exec root, socket and bridge; iptables left alone apart from one NAT
// rule for its bridge), the registry, and the qemu binfmt entries.
import { spawn, execFile as execFileCb } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { ensureStandInBaseImages, type StandInResult } from '../../scripts/stand-in-base-images.js';

const execFile = promisify(execFileCb);

export const T5 = {
  socket: '/run/pifaas-t5/docker.sock',
  execRoot: '/run/pifaas-t5',
  dataRoot: '/var/lib/pifaas-t5',
  pidfile: '/run/pifaas-t5.pid',
  bridge: 't5-docker0',
  bridgeAddress: '10.95.255.1/24',
  bridgeSubnet: '10.95.255.0/24',
  addressPool: '10.95.192.0/18',
  registry: '127.0.0.1:5095',
  registryRoot: '/var/lib/pifaas-t5-registry',
  cacheDir: '/var/cache/pifaas-t5',
} as const;

const BINFMT = '/proc/sys/fs/binfmt_misc';
const QEMU_ENTRIES = ['qemu-aarch64', 'qemu-arm'];

export interface ImageTestEnv {
  dockerHost: string;
  docker: Docker;
  registry: string;
  standIns: StandInResult;
  /** A file with ARM /proc/cpuinfo lines: onnxruntime-node reads it at load and crashes on the x86 one under qemu. */
  armCpuinfo: string;
  stop(): Promise<void>;
}

const sh = async (cmd: string, args: string[]) => (await execFile(cmd, args)).stdout;
const ok = async (cmd: string, args: string[]) =>
  execFile(cmd, args).then(
    () => true,
    () => false,
  );

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
}

function startDetached(cmd: string, args: string[], logFile: string): number {
  const child = spawn('sh', ['-c', `exec "$0" "$@" >>${logFile} 2>&1`, cmd, ...args], { detached: true, stdio: 'ignore' });
  child.unref();
  if (!child.pid) throw new Error(`cannot start ${cmd}`);
  return child.pid;
}

async function stopPid(pid: number, timeoutMs = 20_000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

const ARM_CPUINFO = Array.from(
  { length: 4 },
  (_, i) => `processor\t: ${i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n`,
).join('\n');

/** Starts (or finds running) the daemon, registry and emulation the image tests use. */
export async function startImageTestEnv(log: (line: string) => void = () => undefined): Promise<ImageTestEnv> {
  if (process.getuid?.() !== 0) throw new Error('the image tests need root (dockerd, binfmt_misc)');
  for (const bin of ['/usr/sbin/dockerd', '/usr/bin/docker-registry', '/usr/bin/qemu-aarch64-static', '/usr/bin/qemu-arm-static']) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run scripts/install-test-deps.sh`);
  }
  const undo: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const step of undo.reverse()) await step().catch(() => undefined);
  };
  try {
    return await start(undo, stop, log);
  } catch (e) {
    await stop();
    throw e;
  }
}

async function start(undo: Array<() => Promise<void>>, stop: () => Promise<void>, log: (line: string) => void): Promise<ImageTestEnv> {
  await mkdir(T5.execRoot, { recursive: true });
  await mkdir(T5.cacheDir, { recursive: true });

  // Bridge and NAT for the daemon's containers and build steps (npm ci needs the network).
  if (!(await ok('ip', ['link', 'show', T5.bridge]))) {
    await sh('ip', ['link', 'add', T5.bridge, 'type', 'bridge']);
    await sh('ip', ['addr', 'add', T5.bridgeAddress, 'dev', T5.bridge]);
    await sh('ip', ['link', 'set', T5.bridge, 'up']);
    undo.push(async () => void (await ok('ip', ['link', 'del', T5.bridge])));
  }
  const nat = ['POSTROUTING', '-s', T5.bridgeSubnet, '!', '-o', T5.bridge, '-j', 'MASQUERADE'];
  if (!(await ok('iptables', ['-t', 'nat', '-C', ...nat]))) {
    await sh('iptables', ['-t', 'nat', '-A', ...nat]);
    undo.push(async () => void (await ok('iptables', ['-t', 'nat', '-D', ...nat])));
  }
  if ((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim() !== '1') {
    await writeFile('/proc/sys/net/ipv4/ip_forward', '1');
    undo.push(() => writeFile('/proc/sys/net/ipv4/ip_forward', '0'));
  }

  // The registry: Docker Hub stand-in (the daemon's mirror) and --push target.
  const registryUp = () => fetch(`http://${T5.registry}/v2/`).then((r) => r.ok, () => false);
  if (!(await registryUp())) {
    await mkdir(T5.registryRoot, { recursive: true });
    const config = `${T5.execRoot}/registry.yml`;
    await writeFile(
      config,
      `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${T5.registryRoot}\n  delete:\n    enabled: true\nhttp:\n  addr: ${T5.registry}\n`,
    );
    const pid = startDetached('/usr/bin/docker-registry', ['serve', config], `${T5.execRoot}/registry.log`);
    undo.push(() => stopPid(pid));
    await waitFor('docker-registry', registryUp, 20_000);
  }

  // The daemon.
  const docker = new Docker({ socketPath: T5.socket });
  const daemonUp = () => docker.ping().then(() => true, () => false);
  if (!(await daemonUp())) {
    log('starting dockerd');
    const pid = startDetached(
      '/usr/sbin/dockerd',
      [
        '--data-root', T5.dataRoot,
        '--exec-root', T5.execRoot,
        '--pidfile', T5.pidfile,
        '-H', `unix://${T5.socket}`,
        '--bridge', T5.bridge,
        '--iptables=false',
        '--ip-masq=false',
        '--default-address-pool', `base=${T5.addressPool},size=24`,
        '--registry-mirror', `http://${T5.registry}`,
        '--insecure-registry', '10.95.0.0/16',
      ],
      `${T5.execRoot}/dockerd.log`,
    );
    undo.push(() => stopPid(pid, 30_000));
    await waitFor('dockerd', daemonUp, 60_000);
  }

  // ARM emulation: qemu through binfmt_misc, flag F so it works inside containers.
  if (!existsSync(`${BINFMT}/register`)) {
    await sh('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT]);
    undo.push(async () => {
      const left = (await sh('ls', [BINFMT])).split('\n').filter((n) => n && n !== 'register' && n !== 'status');
      if (left.length === 0) await ok('umount', [BINFMT]);
    });
  }
  for (const entry of QEMU_ENTRIES) {
    if (existsSync(`${BINFMT}/${entry}`)) continue;
    const line = (await readFile(`/usr/lib/binfmt.d/${entry}.conf`, 'utf8')).split('\n').find((l) => l.startsWith(':'));
    if (!line) throw new Error(`/usr/lib/binfmt.d/${entry}.conf has no registration line`);
    await writeFile(`${BINFMT}/register`, line);
    undo.push(() => writeFile(`${BINFMT}/${entry}`, '-1'));
  }
  const armCpuinfo = `${T5.execRoot}/arm-cpuinfo`;
  await writeFile(armCpuinfo, ARM_CPUINFO);

  log('stand-in base images');
  const standIns = await ensureStandInBaseImages({ registry: T5.registry, cacheDir: `${T5.cacheDir}/stand-in`, log });
  return {
    dockerHost: `unix://${T5.socket}`,
    docker,
    registry: T5.registry,
    standIns,
    armCpuinfo,
    stop,
  };
}
