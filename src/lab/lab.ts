// Why: pifaas is tested (by us and by users without Pis) on a real multi-node cluster on one Linux
// machine: each node is a network + mount + UTS namespace on one bridge, with its own hostname and
// filesystem view, OpenSSH's sshd and Debian's dockerd. This module makes and removes such labs;
// tests of every area use it programmatically (several labs, different names and subnets, at once).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { LocalOperator } from '../operator/local-operator.js';
import type { RunResult } from '../operator/operator.js';
import { shellJoin, shellQuote } from '../operator/shell-quote.js';
import { UserError } from '../user-error.js';
import { configureNodeScript, emulatedHardwareScript, holderScript, NODE_ENVIRONMENT, piCmdline, removeDockerScript, startDockerScript } from './lab-node-scripts.js';
import { commandLineOf, listProcesses, namespaceOf, processesOf, terminate } from './lab-processes.js';
import { listLabStates, readLabState, removeLabState, writeLabState, type LabNodeState, type LabState } from './lab-state.js';

export const DEFAULT_LAB_NAME = 'pifaas';
export const DEFAULT_LAB_SUBNET = '10.99.0.0/24';
export const DEFAULT_LAB_NODES = 3;
export const LAB_BASE_DIR = '/var/lib/pifaas/lab';
export const DEFAULT_PI_MODEL = 'Raspberry Pi 4 Model B Rev 1.4';
/** How long an emulated reboot keeps a node down (SSH refused). */
export const LAB_REBOOT_DOWN_SECONDS = 3;

/** Login users on every lab node. */
export type LabUser = 'pi' | 'root' | 'ops';

export interface LabUpOptions {
  /** Lab name: 1-8 lowercase letters/digits, starting with a letter. Default "pifaas". */
  name?: string;
  /** Number of nodes (1-32). Default 3. */
  nodes?: number;
  /** IPv4 subnet of the lab bridge, e.g. 10.99.0.0/24: .1 is this machine, nodes are .11, .12, ... */
  subnet?: string;
  /** Where node data, the SSH key, known_hosts and inventory.yaml go. Default /var/lib/pifaas/lab/<name>. */
  dir?: string;
  /** How many of the nodes are managers in the inventory (the first ones). Default 1. */
  managers?: number;
  /** Start dockerd on the nodes (default true; false leaves Docker installed but stopped). */
  docker?: boolean;
  /**
   * Nodes (numbers from 1) that start without Docker Engine, as a fresh Raspberry Pi OS does:
   * docker.io, containerd, runc and tini are removed from the node's own overlays of /usr, /etc and
   * /var (never from this machine), so `pifaas provision` installs Docker there.
   */
  withoutDocker?: number[];
  /**
   * apt sources (one-line format, e.g. "deb [trusted=yes] http://10.99.0.1:8080/ ./") that replace
   * the host's on the nodes without Docker: lab nodes have no route out, so apt needs a mirror on the
   * bridge. Required with withoutDocker.
   */
  aptSources?: string;
  /**
   * Nodes (numbers from 1) that look like Raspberry Pis, in their own mount namespace only: a device
   * tree naming piModel (/sys/firmware/devicetree/base/model), a boot partition with a one-line
   * /boot/firmware/cmdline.txt, a kernel that enables the memory cgroup when cmdline.txt says
   * cgroup_enable=memory, and `reboot` / `systemctl reboot` emulated (every process of the node
   * stops, SSH is refused for a few seconds, then the node boots: sshd and dockerd start again).
   */
  pi?: number[];
  /** Device-tree model of the pi nodes. Default "Raspberry Pi 4 Model B Rev 1.4". */
  piModel?: string;
  /**
   * Nodes whose kernel starts without the memory cgroup (as a Pi kernel does unless cmdline.txt
   * enables it): /sys/fs/cgroup/cgroup.controllers (cgroup v2) or /proc/cgroups (v1) say so in the
   * node's own mount namespace. These nodes get the emulated reboot too.
   */
  withoutMemoryCgroup?: number[];
  /** The inventory's ansible_user: pi (sudo with a password, default), root, or ops (passwordless sudo). */
  user?: LabUser;
  /** Progress messages (one line each). */
  onProgress?: (message: string) => void;
}

export interface LabNode {
  name: string;
  index: number;
  role: 'manager' | 'worker';
  address: string;
}

export interface Lab {
  name: string;
  subnet: string;
  /** This machine's address on the lab bridge. */
  gateway: string;
  bridge: string;
  dir: string;
  /** inventory.yaml for the lab (mode 0600: holds the lab's throwaway sudo password). */
  inventoryFile: string;
  /** Private SSH key authorized for root, pi and ops on every node. */
  sshKeyFile: string;
  /** known_hosts with every node's host key (the inventory points at it). */
  knownHostsFile: string;
  nodes: LabNode[];
  /** The inventory's login user. */
  user: LabUser;
  /** sudo password of user `pi` on every node. */
  piPassword: string;
  /** Nodes (numbers) made without Docker Engine. */
  withoutDocker: number[];
  /** Nodes (numbers) that look like Raspberry Pis, and their model. */
  pi: number[];
  piModel: string;
  /** Nodes (numbers) whose kernel starts without the memory cgroup. */
  withoutMemoryCgroup: number[];
}

export interface LabDownResult {
  name: string;
  /** False when there was nothing to remove. */
  found: boolean;
  /** Processes stopped (sshd, dockerd, containers...). */
  processes: number;
}

const NAME_RE = /^[a-z][a-z0-9]{0,7}$/;

interface Subnet {
  base: number;
  prefixLength: number;
  size: number;
}

function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error('bad address');
  return (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseSubnet(subnet: string, nodes = 1): Subnet {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(subnet);
  let base: number;
  try {
    if (!m) throw new Error('format');
    base = ipToInt(m[1] ?? '');
  } catch {
    throw new UserError(`lab subnet "${subnet}" is not an IPv4 subnet`, 'give it as ADDRESS/PREFIX, e.g. --subnet 10.99.0.0/24');
  }
  const prefixLength = Number(m?.[2]);
  if (prefixLength < 8 || prefixLength > 28) throw new UserError(`lab subnet "${subnet}": prefix length must be 8 to 28`, 'e.g. --subnet 10.99.0.0/24');
  const size = 2 ** (32 - prefixLength);
  const mask = (0xffffffff << (32 - prefixLength)) >>> 0;
  if ((base & mask) >>> 0 !== base) {
    throw new UserError(`lab subnet "${subnet}" has host bits set`, `did you mean ${intToIp((base & mask) >>> 0)}/${prefixLength}?`);
  }
  if (11 + nodes >= size - 1) throw new UserError(`lab subnet ${subnet} is too small for ${nodes} nodes`, 'use a /24 or fewer nodes');
  return { base, prefixLength, size };
}

function overlaps(a: Subnet, b: Subnet): boolean {
  return a.base < b.base + b.size && b.base < a.base + a.size;
}

const host = new LocalOperator({ name: 'lab host' });

function sh(command: string, opts: { stdin?: string; check?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
  return host.run(command, { stdin: opts.stdin, check: opts.check, timeoutMs: opts.timeoutMs ?? 120_000 });
}

/** `env -i` with the node's environment: what runs in a node never inherits this process's. */
const NODE_ENV = `env -i ${Object.entries(NODE_ENVIRONMENT)
  .map(([k, v]) => `${k}=${shellQuote(v)}`)
  .join(' ')}`;

/** Runs a shell script as root inside a node's namespaces (script on stdin), in the node's own environment. */
function nodeSh(holderPid: number, script: string, opts: { check?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
  return sh(`nsenter -t ${holderPid} -n -m -u -- ${NODE_ENV} /bin/bash -s`, { stdin: script, check: opts.check, timeoutMs: opts.timeoutMs });
}

const REQUIRED_TOOLS: [string, string][] = [
  ['ip', 'iproute2'],
  ['unshare', 'util-linux'],
  ['nsenter', 'util-linux'],
  ['iptables', 'iptables'],
  ['sshd', 'openssh-server'],
  ['ssh-keygen', 'openssh-client'],
  ['dockerd', 'docker.io'],
  ['docker', 'docker.io'],
  ['sudo', 'sudo'],
  ['useradd', 'passwd'],
  ['service', 'init-system-helpers'],
];

/**
 * Linux and root, or a UserError saying so: every lab command needs root (the labs' records under
 * /var/lib/pifaas/labs are root's alone, and so are the nodes' namespaces and daemons).
 */
function checkLabRoot(why: string): void {
  if (process.platform !== 'linux') throw new UserError('pifaas lab needs Linux (network and mount namespaces)', 'run it on a Linux machine or VM');
  if (process.getuid?.() !== 0) throw new UserError(`pifaas lab must run as root (${why})`, 'run it with sudo');
}

/** Root on Linux with the packages the lab needs, or a UserError saying what to install. */
export async function checkLabPrerequisites(): Promise<void> {
  checkLabRoot('it creates network namespaces, a bridge and daemons');
  const missing: string[] = [];
  for (const [tool, pkg] of REQUIRED_TOOLS) {
    const r = await sh(`PATH="$PATH:/usr/sbin:/sbin" command -v ${tool}`, { check: false });
    if (r.code !== 0 && !missing.includes(pkg)) missing.push(pkg);
  }
  if (missing.length) {
    throw new UserError(`pifaas lab needs ${missing.join(', ')}`, `install them: apt-get install -y --no-install-recommends ${missing.join(' ')}`);
  }
  for (const script of ['/etc/init.d/ssh', '/etc/init.d/docker']) {
    try {
      await access(script);
    } catch {
      throw new UserError(`pifaas lab needs ${script} (Debian's init script)`, 'install Debian\'s packages: apt-get install -y openssh-server docker.io');
    }
  }
}

function labPaths(dir: string) {
  return {
    inventoryFile: path.join(dir, 'inventory.yaml'),
    sshKeyFile: path.join(dir, 'id_ed25519'),
    knownHostsFile: path.join(dir, 'known_hosts'),
    passwordFile: path.join(dir, 'sudo-password'),
    nodesDir: path.join(dir, 'nodes'),
  };
}

async function labFromState(state: LabState): Promise<Lab> {
  const p = labPaths(state.dir);
  const piPassword = (await readFile(p.passwordFile, 'utf8')).trim();
  return {
    name: state.name,
    subnet: state.subnet,
    gateway: state.gateway,
    bridge: state.bridge,
    dir: state.dir,
    inventoryFile: p.inventoryFile,
    sshKeyFile: p.sshKeyFile,
    knownHostsFile: p.knownHostsFile,
    nodes: state.nodes.map((n) => ({ name: n.name, index: n.index, role: n.role, address: n.address })),
    user: state.user as LabUser,
    piPassword,
    withoutDocker: state.withoutDocker,
    pi: state.pi,
    piModel: state.piModel ?? DEFAULT_PI_MODEL,
    withoutMemoryCgroup: state.withoutMemoryCgroup,
  };
}

async function holderAlive(lab: string, n: LabNodeState): Promise<boolean> {
  return (await commandLineOf(n.holderPid)).startsWith(holderName(lab, n.index)) && (await namespaceOf(n.holderPid, 'net')) === n.netNs;
}

function holderName(lab: string, index: number): string {
  return `pifaas-lab:${lab}:${index}`;
}

/** The lab recorded under this name, if any (whether or not its nodes still run). */
export async function findLab(name: string): Promise<Lab | undefined> {
  const state = await readLabState(name);
  return state ? labFromState(state) : undefined;
}

export interface LabSummary {
  name: string;
  subnet: string;
  dir: string;
  inventoryFile: string;
  nodes: (LabNode & { running: boolean })[];
}

/** Every lab recorded on this machine, with whether each node still runs. */
export async function listLabs(): Promise<LabSummary[]> {
  checkLabRoot("only root can read the labs' records and see whether their nodes run");
  const out: LabSummary[] = [];
  for (const s of await listLabStates()) {
    out.push({
      name: s.name,
      subnet: s.subnet,
      dir: s.dir,
      inventoryFile: labPaths(s.dir).inventoryFile,
      nodes: await Promise.all(s.nodes.map(async (n) => ({ name: n.name, index: n.index, role: n.role, address: n.address, running: await holderAlive(s.name, n) }))),
    });
  }
  return out;
}

/** The settings a lab was made with that differ from these ("--nodes 3, not 4"); none: the same lab. */
function settingsDifferences(
  had: LabState,
  want: { nodes: number; subnet: string; dir: string; managers: number; docker: boolean; user: LabUser; withoutDocker: number[]; aptSources?: string; pi: number[]; piModel: string; withoutMemoryCgroup: number[] },
): string[] {
  const list = (l: number[]) => (l.length ? l.join(',') : 'none');
  const dockerd = (d: boolean) => (d ? 'started' : 'stopped (--no-docker)');
  const pairs: [string, string, string][] = [
    ['--nodes', String(had.nodes.length), String(want.nodes)],
    ['--subnet', had.subnet, want.subnet],
    ['--dir', had.dir, want.dir],
    ['--managers', String(had.managers), String(want.managers)],
    ['--user', had.user, want.user],
    ['dockerd', dockerd(had.docker), dockerd(want.docker)],
    ['--without-docker', list(had.withoutDocker), list(want.withoutDocker)],
    ['--apt-source', had.aptSources ?? 'none', want.aptSources ?? 'none'],
    ['--pi', list(had.pi), list(want.pi)],
    ['--pi-model', had.piModel ?? DEFAULT_PI_MODEL, want.piModel],
    ['--without-memory-cgroup', list(had.withoutMemoryCgroup), list(want.withoutMemoryCgroup)],
  ];
  return pairs.filter(([, a, b]) => a !== b).map(([flag, a, b]) => `${flag} ${a}, not ${b}`);
}

/**
 * Makes a lab, or returns the running one with the same settings (up is idempotent). A running lab
 * with the same name but other settings is refused, never replaced: its nodes would be lost. A lab
 * whose nodes are gone (this machine rebooted, say) is removed and made again.
 */
export async function labUp(options: LabUpOptions = {}): Promise<Lab> {
  const name = options.name ?? DEFAULT_LAB_NAME;
  const nodeCount = options.nodes ?? DEFAULT_LAB_NODES;
  const subnetText = options.subnet ?? DEFAULT_LAB_SUBNET;
  const managers = options.managers ?? 1;
  const docker = options.docker ?? true;
  const withoutDocker = [...new Set(options.withoutDocker ?? [])].sort((a, b) => a - b);
  const aptSources = options.aptSources?.trim() || undefined;
  const pi = [...new Set(options.pi ?? [])].sort((a, b) => a - b);
  const piModel = options.piModel?.trim() || DEFAULT_PI_MODEL;
  const withoutMemoryCgroup = [...new Set(options.withoutMemoryCgroup ?? [])].sort((a, b) => a - b);
  const user = options.user ?? 'pi';
  const progress = options.onProgress ?? (() => {});
  if (!NAME_RE.test(name)) {
    throw new UserError(`lab name "${name}" is not valid`, 'use 1 to 8 lowercase letters and digits, starting with a letter (it prefixes interface names)');
  }
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 32) throw new UserError(`--nodes ${nodeCount}: a lab has 1 to 32 nodes`);
  if (!Number.isInteger(managers) || managers < 1 || managers > nodeCount) throw new UserError(`--managers ${managers}: must be 1 to the number of nodes (${nodeCount})`);
  for (const n of withoutDocker) {
    if (!Number.isInteger(n) || n < 1 || n > nodeCount) throw new UserError(`--without-docker ${n}: not a node of this lab (nodes are 1 to ${nodeCount})`);
  }
  for (const [flag, list] of [['--pi', pi], ['--without-memory-cgroup', withoutMemoryCgroup]] as const) {
    for (const n of list) if (!Number.isInteger(n) || n < 1 || n > nodeCount) throw new UserError(`${flag} ${n}: not a node of this lab (nodes are 1 to ${nodeCount})`);
  }
  if (!/^[\x20-\x7e]{1,100}$/.test(piModel)) throw new UserError(`--pi-model "${piModel}": give a model name of printable characters, e.g. "${DEFAULT_PI_MODEL}"`);
  const subnet = parseSubnet(subnetText, nodeCount);
  if (withoutDocker.length && !aptSources) {
    // Without a mirror on the bridge, `pifaas provision` would wait on Debian's unreachable mirrors for many minutes.
    const bridgeAddress = intToIp(subnet.base + 1);
    throw new UserError(
      `--without-docker ${withoutDocker.join(',')} needs --apt-source: lab nodes have no route out, so apt there can only reach a mirror on the lab bridge (${bridgeAddress})`,
      `serve a folder of .deb files (docker.io, containerd, runc, tini; indexed by dpkg-scanpackages) on ${bridgeAddress} and name it, e.g. --apt-source "deb [trusted=yes] http://${bridgeAddress}:8080/ ./" (README: Trying the "Docker not installed" path in the lab)`,
    );
  }
  const dir = path.resolve(options.dir ?? path.join(LAB_BASE_DIR, name));
  await checkLabPrerequisites();

  const existing = await readLabState(name);
  if (existing) {
    const differences = settingsDifferences(existing, { nodes: nodeCount, subnet: subnetText, dir, managers, docker, user, withoutDocker, aptSources, pi, piModel, withoutMemoryCgroup });
    const running = existing.nodes.length > 0 && (await Promise.all(existing.nodes.map((n) => holderAlive(name, n)))).every(Boolean);
    // A lab that an `up` killed half-way left behind is made again (as one whose nodes are gone), whatever its settings.
    const halfMade = existing.complete === false;
    if (running && !halfMade && differences.length) {
      // Making it again would silently throw away its nodes (a provisioned swarm, keys, host keys).
      throw new UserError(
        `lab ${name} is already up with ${differences.join('; ')}; it was left as it is`,
        `to make it again with these settings (its nodes and everything on them are lost): sudo pifaas lab down --name ${name}, then this command again; or make another lab beside it with --name and --subnet`,
      );
    }
    if (running && !halfMade) {
      progress(`lab ${name} is already up; checking sshd${docker ? ' and dockerd' : ''} on every node`);
      // A node made without Docker runs dockerd only once something installed it there.
      const start = (n: LabNodeState) => (!docker ? '' : withoutDocker.includes(n.index) ? `if command -v dockerd >/dev/null; then\n${startDockerScript()}fi\n` : startDockerScript());
      await Promise.all(existing.nodes.map((n) => nodeSh(n.holderPid, `service ssh start >/dev/null\n${start(n)}`)));
      return labFromState(existing);
    }
    progress(`lab ${name} exists but ${halfMade ? 'was left half-made' : 'some nodes are gone'}; removing it first`);
    await labDown(name);
  }

  for (const other of await listLabStates()) {
    if (other.name !== name && overlaps(parseSubnet(other.subnet), subnet)) {
      throw new UserError(`lab subnet ${subnetText} overlaps ${other.subnet} of lab "${other.name}"`, `choose another --subnet, or remove that lab: pifaas lab down --name ${other.name}`);
    }
  }
  const bridge = `${name}-br`;
  const inUse = await sh(`ip -4 -o addr show | awk '$2 != "${bridge}" {print $2, $4}'`);
  for (const lineText of inUse.stdout.trim().split('\n').filter(Boolean)) {
    const [iface, cidr] = lineText.split(' ');
    if (!cidr) continue;
    const [addr] = cidr.split('/');
    const n = ipToInt(addr ?? '0.0.0.0');
    if (n >= subnet.base && n < subnet.base + subnet.size) {
      throw new UserError(`lab subnet ${subnetText} is already used on this machine (${iface} has ${cidr})`, 'choose another --subnet');
    }
  }

  const gateway = intToIp(subnet.base + 1);
  const paths = labPaths(dir);
  const nodes: LabNode[] = Array.from({ length: nodeCount }, (_, i) => ({
    name: `${name}-${i + 1}`,
    index: i + 1,
    role: i < managers ? 'manager' : 'worker',
    address: intToIp(subnet.base + 11 + i),
  }));
  const state: LabState = {
    version: 1,
    name,
    subnet: subnetText,
    prefixLength: subnet.prefixLength,
    gateway,
    bridge,
    dir,
    createdAt: new Date().toISOString(),
    iptables: [],
    nodes: [],
    docker,
    managers,
    user,
    withoutDocker,
    ...(aptSources ? { aptSources } : {}),
    pi,
    piModel,
    withoutMemoryCgroup,
    complete: false,
  };
  // Recorded before anything is made, so `lab down` can clean up after a crash at any point.
  await writeLabState(state);
  let saving = Promise.resolve();
  const save = () => (saving = saving.then(() => writeLabState(state)));

  try {
    progress(`bridge ${bridge} (${gateway}/${subnet.prefixLength})`);
    await mkdir(paths.nodesDir, { recursive: true, mode: 0o700 });
    await sh(
      [
        `ip link show ${bridge} >/dev/null 2>&1 || ip link add ${bridge} type bridge`,
        `ip addr replace ${gateway}/${subnet.prefixLength} dev ${bridge}`,
        `ip link set ${bridge} up`,
      ].join(' && '),
    );
    // Other dockerds on this machine set the FORWARD policy to DROP; let the lab's bridged traffic through.
    const rule = { table: 'filter', chain: 'FORWARD', rule: ['-i', bridge, '-o', bridge, '-j', 'ACCEPT'] };
    await sh(`iptables -w -C FORWARD ${shellJoin(rule.rule)} 2>/dev/null || iptables -w -I FORWARD 1 ${shellJoin(rule.rule)}`);
    state.iptables.push(rule);
    await save();

    progress('SSH key and sudo password');
    await rm(paths.sshKeyFile, { force: true });
    await rm(`${paths.sshKeyFile}.pub`, { force: true });
    await sh(`ssh-keygen -q -t ed25519 -N '' -C ${shellQuote(`pifaas-lab-${name}`)} -f ${shellQuote(paths.sshKeyFile)}`);
    const publicKey = (await readFile(`${paths.sshKeyFile}.pub`, 'utf8')).trim();
    const piPassword = randomBytes(12).toString('base64url');
    await writeFile(paths.passwordFile, `${piPassword}\n`, { mode: 0o600 });

    const hostKeys = await Promise.all(
      nodes.map(async (node) => {
        progress(`${node.name}: namespaces, filesystem view`);
        const nodeDir = path.join(paths.nodesDir, node.name);
        await rm(nodeDir, { recursive: true, force: true });
        const dockerless = withoutDocker.includes(node.index);
        const isPi = pi.includes(node.index);
        // Emulated hardware (a Pi, a kernel without the memory cgroup) needs the node's own /usr too (the reboot shims).
        const emulated = isPi || withoutMemoryCgroup.includes(node.index);
        const privateUsr = dockerless || emulated;
        for (const sub of ['upper/etc', 'upper/var', 'work/etc', 'work/var', 'docker', 'home', 'root', ...(privateUsr ? ['upper/usr', 'work/usr'] : [])]) {
          await mkdir(path.join(nodeDir, sub), { recursive: true, mode: 0o755 });
        }
        const holderPid = await startHolder(
          holderScript({ nodeDir, hostname: node.name, holderName: holderName(name, node.index), privateUsr }),
          node.name,
        );
        const veth = `${name}-v${node.index}`;
        state.nodes.push({
          name: node.name,
          index: node.index,
          role: node.role,
          address: node.address,
          veth,
          holderPid,
          netNs: (await namespaceOf(holderPid, 'net')) ?? 0,
          mntNs: (await namespaceOf(holderPid, 'mnt')) ?? 0,
        });
        state.nodes.sort((a, b) => a.index - b.index);
        await save();
        await sh(`ip link del ${veth} 2>/dev/null; ip link add ${veth} type veth peer name eth0 netns ${holderPid} && ip link set ${veth} master ${bridge} up`);
        progress(`${node.name}: users, sshd${docker && !dockerless ? ', dockerd' : ''}`);
        const r = await nodeSh(
          holderPid,
          configureNodeScript({
            hostname: node.name,
            address: node.address,
            gateway,
            prefixLength: subnet.prefixLength,
            peers: nodes,
            authorizedKey: publicKey,
            piPassword,
            startDocker: docker && !dockerless,
          }),
          { timeoutMs: 180_000 },
        );
        if (dockerless) {
          progress(`${node.name}: removing Docker Engine from the node's own /usr, /etc and /var`);
          await nodeSh(holderPid, removeDockerScript({ aptSources }), { timeoutMs: 120_000 });
        }
        if (emulated) {
          progress(`${node.name}: ${isPi ? `${piModel} device tree and boot partition, ` : ''}emulated kernel and reboot`);
          await nodeSh(
            holderPid,
            emulatedHardwareScript({
              holderName: holderName(name, node.index),
              piModel: isPi ? piModel : undefined,
              cmdline: isPi ? piCmdline(randomBytes(4).toString('hex')) : undefined,
              memoryCgroup: !withoutMemoryCgroup.includes(node.index),
              downSeconds: LAB_REBOOT_DOWN_SECONDS,
            }),
            { timeoutMs: 60_000 },
          );
        }
        const key = r.stdout.trim().split('\n').at(-1) ?? '';
        return `${node.address} ${key.split(' ').slice(0, 2).join(' ')}`;
      }),
    );
    await writeFile(paths.knownHostsFile, `${hostKeys.join('\n')}\n`, { mode: 0o600 });
    const lab: Lab = {
      name,
      subnet: subnetText,
      gateway,
      bridge,
      dir,
      inventoryFile: paths.inventoryFile,
      sshKeyFile: paths.sshKeyFile,
      knownHostsFile: paths.knownHostsFile,
      nodes,
      user,
      piPassword,
      withoutDocker,
      pi,
      piModel,
      withoutMemoryCgroup,
    };
    await writeLabInventory(lab, paths.inventoryFile, { user });
    state.complete = true;
    await save();
    await saving;
    progress(`lab ${name} is up: ${nodes.map((n) => `${n.name} ${n.address}`).join(', ')}`);
    return lab;
  } catch (e) {
    await saving.catch(() => undefined);
    await labDown(name).catch(() => undefined);
    throw e;
  }
}

/** Starts the namespace holder (detached, survives this process) and waits for its READY line. */
function startHolder(script: string, nodeName: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['--net', '--mount', '--uts', '--propagation', 'private', '--', '/bin/bash', '-c', script], {
      env: { ...NODE_ENVIRONMENT },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${nodeName}: the namespace setup did not finish in 30 s: ${err}`));
    }, 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY\n') && child.pid) {
        clearTimeout(timer);
        child.stdout.destroy();
        child.stderr.destroy();
        child.unref();
        resolve(child.pid);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new UserError(`${nodeName}: setting up the node's namespaces failed (exit ${code}): ${err.trim()}`));
    });
  });
}

export interface LabInventoryOptions {
  user?: LabUser;
  /** Write ansible_become_password (default: yes for pi). null leaves it out; a string overrides it. */
  becomePassword?: string | null;
  /** Only these nodes (default all). */
  nodes?: string[];
  /** Manager count override (the first N listed nodes). */
  managers?: number;
  /** known_hosts file to point at (default the lab's). */
  knownHostsFile?: string;
}

/** Writes an inventory for the lab (tests make variants: another user, a wrong password, fewer nodes). */
export async function writeLabInventory(lab: Lab, file: string, options: LabInventoryOptions = {}): Promise<void> {
  const user = options.user ?? lab.user;
  const chosen = lab.nodes.filter((n) => !options.nodes || options.nodes.includes(n.name));
  const managerNames = new Set(
    options.managers !== undefined ? chosen.slice(0, options.managers).map((n) => n.name) : chosen.filter((n) => n.role === 'manager').map((n) => n.name),
  );
  const hostsOf = (role: 'manager' | 'worker') =>
    Object.fromEntries(chosen.filter((n) => managerNames.has(n.name) === (role === 'manager')).map((n) => [n.name, { ansible_host: n.address }]));
  const becomePassword = options.becomePassword === undefined ? (user === 'pi' ? lab.piPassword : undefined) : (options.becomePassword ?? undefined);
  const vars: Record<string, unknown> = {
    ansible_user: user,
    ansible_ssh_private_key_file: lab.sshKeyFile,
    ...(becomePassword !== undefined ? { ansible_become_password: becomePassword } : {}),
    pifaas_known_hosts_file: options.knownHostsFile ?? lab.knownHostsFile,
    // One kernel for every lab node, and it may lack IPVS (no routing mesh): publish the gateway
    // on the manager's own port instead of through ingress.
    pifaas_openfaas_publish: 'host',
  };
  const workers = hostsOf('worker');
  const doc = {
    all: {
      vars,
      children: {
        managers: { hosts: hostsOf('manager') },
        ...(Object.keys(workers).length ? { workers: { hosts: workers } } : {}),
      },
    },
  };
  const header =
    `# pifaas lab "${lab.name}": ${chosen.length} node(s) in network namespaces on this machine (bridge ${lab.bridge}).\n` +
    `# Made by \`pifaas lab up\`; removed by \`pifaas lab down --name ${lab.name}\`. The sudo password below is\n` +
    `# the lab's own throwaway one (this file is mode 0600).\n`;
  await writeFile(file, header + stringify(doc), { mode: 0o600 });
}

/**
 * Removes a lab: every process in its nodes' namespaces (and their children: containers), the
 * veths, the bridge, its iptables rules, its files and its record. Works after the process that
 * made the lab was killed, and on a half-made lab. Nothing else on the machine is touched.
 */
export async function labDown(name: string = DEFAULT_LAB_NAME): Promise<LabDownResult> {
  if (!NAME_RE.test(name)) throw new UserError(`lab name "${name}" is not valid`, 'use the name given to `pifaas lab up --name`');
  checkLabRoot("it stops the lab's daemons and removes its namespaces, bridge, iptables rules and files");
  const state = await readLabState(name);
  const all = await listProcesses();
  // Holders are found by name too, in case the lab's record was not written yet.
  const holders = new Set(state?.nodes.map((n) => n.holderPid) ?? []);
  for (const p of all) if ((await commandLineOf(p.pid)).startsWith(`pifaas-lab:${name}:`)) holders.add(p.pid);
  const netNs = new Set<number>(state?.nodes.map((n) => n.netNs) ?? []);
  const mntNs = new Set<number>(state?.nodes.map((n) => n.mntNs) ?? []);
  const liveHolders: number[] = [];
  for (const pid of holders) {
    if (!(await commandLineOf(pid)).startsWith(`pifaas-lab:${name}:`)) continue; // pid reused by something else
    liveHolders.push(pid);
    const n = await namespaceOf(pid, 'net');
    const m = await namespaceOf(pid, 'mnt');
    if (n) netNs.add(n);
    if (m) mntNs.add(m);
  }
  netNs.delete(0);
  mntNs.delete(0);
  // Never the host's own namespaces (a record could be corrupt).
  const ownNet = await namespaceOf(process.pid, 'net');
  const ownMnt = await namespaceOf(process.pid, 'mnt');
  if (ownNet) netNs.delete(ownNet);
  if (ownMnt) mntNs.delete(ownMnt);
  const pids = processesOf(all, netNs, mntNs, liveHolders);
  await terminate(pids, 0);

  const bridge = state?.bridge ?? `${name}-br`;
  const veths = (await sh(`ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^${name}-v[0-9]+$' || true`)).stdout.split('\n').filter(Boolean);
  for (const v of veths) await sh(`ip link del ${v}`, { check: false });
  await sh(`ip link del ${bridge}`, { check: false });
  const rules = state?.iptables ?? [{ table: 'filter', chain: 'FORWARD', rule: ['-i', bridge, '-o', bridge, '-j', 'ACCEPT'] }];
  for (const r of rules) {
    await sh(`while iptables -w -t ${r.table} -C ${r.chain} ${shellJoin(r.rule)} 2>/dev/null; do iptables -w -t ${r.table} -D ${r.chain} ${shellJoin(r.rule)}; done`, { check: false });
  }
  if (state) {
    const p = labPaths(state.dir);
    await rm(p.nodesDir, { recursive: true, force: true, maxRetries: 5 });
    for (const f of [p.inventoryFile, p.sshKeyFile, `${p.sshKeyFile}.pub`, p.knownHostsFile, p.passwordFile]) await rm(f, { force: true });
    await rmdir(state.dir).catch(() => undefined); // only if nothing else is in it
  }
  await removeLabState(name);
  return { name, found: Boolean(state) || pids.length > 0 || veths.length > 0, processes: pids.length };
}

/** Runs a shell script as root inside a lab node (tests: stop sshd, change a host key...). */
export async function labNodeExec(labName: string, nodeName: string, script: string, opts: { check?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
  const state = await readLabState(labName);
  const node = state?.nodes.find((n) => n.name === nodeName);
  if (!state || !node) throw new UserError(`lab "${labName}" has no node "${nodeName}"`, 'list labs with `sudo pifaas lab ls`');
  if (!(await holderAlive(labName, node))) throw new UserError(`lab node ${nodeName} is not running`, `re-create the lab: pifaas lab up --name ${labName}`);
  return nodeSh(node.holderPid, script, opts);
}
