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

/** Names that keep one image-test daemon apart from others: socket, roots, bridge, subnets, registry. */
export interface ImageTestNames {
  socket: string;
  execRoot: string;
  dataRoot: string;
  pidfile: string;
  bridge: string;
  bridgeAddress: string;
  bridgeSubnet: string;
  addressPool: string;
  /** 127.0.0.1:PORT of the registry (Docker Hub mirror and --push target). */
  registry: string;
  registryRoot: string;
  /** Stand-in base image layers are cached under CACHE/stand-in. */
  cacheDir: string;
}

export const T5: ImageTestNames = {
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
};

/** The buildx-path suite's own daemon and registry (test/integration/image-buildx.test.ts). */
export const BX: ImageTestNames = {
  socket: '/run/pifaas-bx/docker.sock',
  execRoot: '/run/pifaas-bx',
  dataRoot: '/var/lib/pifaas-bx',
  pidfile: '/run/pifaas-bx.pid',
  bridge: 'bx-docker0',
  bridgeAddress: '10.96.255.1/24',
  bridgeSubnet: '10.96.255.0/24',
  addressPool: '10.96.192.0/18',
  registry: '127.0.0.1:5096',
  registryRoot: '/var/lib/pifaas-bx-registry',
  // The stand-in layers are the same for every suite (integration suites run one at a time).
  cacheDir: T5.cacheDir,
};

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
export async function startImageTestEnv(log: (line: string) => void = () => undefined, names: ImageTestNames = T5): Promise<ImageTestEnv> {
  if (process.getuid?.() !== 0) throw new Error('the image tests need root (dockerd, binfmt_misc)');
  for (const bin of ['/usr/sbin/dockerd', '/usr/bin/docker-registry', '/usr/bin/qemu-aarch64-static', '/usr/bin/qemu-arm-static']) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run scripts/install-test-deps.sh`);
  }
  const undo: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const step of undo.reverse()) await step().catch(() => undefined);
  };
  try {
    return await start(undo, stop, log, names);
  } catch (e) {
    await stop();
    throw e;
  }
}

async function start(undo: Array<() => Promise<void>>, stop: () => Promise<void>, log: (line: string) => void, names: ImageTestNames): Promise<ImageTestEnv> {
  await mkdir(names.execRoot, { recursive: true });
  await mkdir(names.cacheDir, { recursive: true });

  // Bridge and NAT for the daemon's containers and build steps (npm ci needs the network).
  if (!(await ok('ip', ['link', 'show', names.bridge]))) {
    await sh('ip', ['link', 'add', names.bridge, 'type', 'bridge']);
    await sh('ip', ['addr', 'add', names.bridgeAddress, 'dev', names.bridge]);
    await sh('ip', ['link', 'set', names.bridge, 'up']);
    undo.push(async () => void (await ok('ip', ['link', 'del', names.bridge])));
  }
  const nat = ['POSTROUTING', '-s', names.bridgeSubnet, '!', '-o', names.bridge, '-j', 'MASQUERADE'];
  if (!(await ok('iptables', ['-t', 'nat', '-C', ...nat]))) {
    await sh('iptables', ['-t', 'nat', '-A', ...nat]);
    undo.push(async () => void (await ok('iptables', ['-t', 'nat', '-D', ...nat])));
  }
  if ((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim() !== '1') {
    await writeFile('/proc/sys/net/ipv4/ip_forward', '1');
    undo.push(() => writeFile('/proc/sys/net/ipv4/ip_forward', '0'));
  }

  // The registry: Docker Hub stand-in (the daemon's mirror) and --push target.
  const registryUp = () => fetch(`http://${names.registry}/v2/`).then((r) => r.ok, () => false);
  if (!(await registryUp())) {
    await mkdir(names.registryRoot, { recursive: true });
    const config = `${names.execRoot}/registry.yml`;
    await writeFile(
      config,
      `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${names.registryRoot}\n  delete:\n    enabled: true\nhttp:\n  addr: ${names.registry}\n`,
    );
    const pid = startDetached('/usr/bin/docker-registry', ['serve', config], `${names.execRoot}/registry.log`);
    undo.push(() => stopPid(pid));
    await waitFor('docker-registry', registryUp, 20_000);
  }

  // The daemon.
  const docker = new Docker({ socketPath: names.socket });
  const daemonUp = () => docker.ping().then(() => true, () => false);
  if (!(await daemonUp())) {
    log('starting dockerd');
    const pid = startDetached(
      '/usr/sbin/dockerd',
      [
        '--data-root', names.dataRoot,
        '--exec-root', names.execRoot,
        '--pidfile', names.pidfile,
        '-H', `unix://${names.socket}`,
        '--bridge', names.bridge,
        '--iptables=false',
        '--ip-masq=false',
        '--default-address-pool', `base=${names.addressPool},size=24`,
        '--registry-mirror', `http://${names.registry}`,
        '--insecure-registry', '10.95.0.0/16',
      ],
      `${names.execRoot}/dockerd.log`,
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
  const armCpuinfo = `${names.execRoot}/arm-cpuinfo`;
  await writeFile(armCpuinfo, ARM_CPUINFO);

  log('stand-in base images');
  const standIns = await ensureStandInBaseImages({ registry: names.registry, cacheDir: `${names.cacheDir}/stand-in`, log });
  return {
    dockerHost: `unix://${names.socket}`,
    docker,
    registry: names.registry,
    standIns,
    armCpuinfo,
    stop,
  };
}
