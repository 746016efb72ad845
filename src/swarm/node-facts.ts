// Why: what a node is decides how it is provisioned (package manager, init system, Pi or not,
// cgroups). One read-only command collects it all, so a second run costs one round trip.
import { z } from 'zod';
import type { Operator } from '../operator/operator.js';

export const nodeFactsSchema = z.object({
  /** /etc/os-release ID and VERSION_ID, e.g. debian 12, raspbian 12, ubuntu 24.04. */
  osId: z.string(),
  osVersion: z.string(),
  osName: z.string(),
  /** uname -m: armv7l, aarch64, x86_64 ... */
  arch: z.string(),
  /** The device-tree model (/proc/device-tree/model, or /sys/firmware/devicetree/base/model it links to) when it names a Raspberry Pi. */
  piModel: z.string().optional(),
  memoryMb: z.number(),
  /** systemd is PID 1 (else Debian's `service` and init scripts are used). */
  systemd: z.boolean(),
  dockerInstalled: z.boolean(),
  /** Docker Engine version (dpkg's, else `dockerd --version`), when installed. */
  dockerVersion: z.string().optional(),
  /** A dockerd process runs (per its pid file). Not yet a proof that it answers on its socket. */
  dockerdRunning: z.boolean(),
  memoryCgroup: z.boolean(),
  /** cgroup v2 unified hierarchy. */
  cgroupV2: z.boolean(),
  /** The login user. */
  user: z.string(),
  /** The login session has the docker group (can open the socket without sudo). */
  sessionInDockerGroup: z.boolean(),
  /** /etc/group lists the user in the docker group. */
  userInDockerGroup: z.boolean(),
  /** Source address the node uses to reach the outside (advertise address fallback). */
  primaryAddress: z.string().optional(),
  /** Pi boot command line file, when present. */
  cmdlineFile: z.string().optional(),
  /** The running kernel was booted with cgroup_enable=memory (/proc/cmdline): a reboot would not enable the memory cgroup. */
  bootedWithMemoryCgroupFlag: z.boolean(),
  /** /proc/sys/kernel/random/boot_id: changes with every boot (a reboot is seen as done when it does). */
  bootId: z.string().optional(),
});

export type NodeFacts = z.infer<typeof nodeFactsSchema>;

const FACTS_SCRIPT = `
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
. /etc/os-release 2>/dev/null || true
echo "osId=\${ID:-unknown}"
echo "osVersion=\${VERSION_ID:-}"
echo "osName=\${PRETTY_NAME:-unknown}"
echo "arch=$(uname -m)"
for f in /proc/device-tree/model /sys/firmware/devicetree/base/model; do
  if [ -r "$f" ]; then echo "model=$(tr -d '\\0' < "$f")"; break; fi
done
echo "memKb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
if [ -d /run/systemd/system ]; then echo systemd=1; else echo systemd=0; fi
dockerd=$(command -v dockerd 2>/dev/null || { [ -x /usr/bin/dockerd ] && echo /usr/bin/dockerd; })
if [ -n "$dockerd" ]; then
  echo dockerInstalled=1
  # A packaged dockerd's version comes from dpkg's database: starting the Go binary only to print
  # its version costs ~0.3 s of CPU, more on a small board.
  v=
  case "$dockerd" in /usr/bin/dockerd|/usr/sbin/dockerd)
    v=$(dpkg-query -W -f='\${db:Status-Abbrev}\${Version}\\n' docker.io docker-ce moby-engine 2>/dev/null | sed -n 's/^ii *//p' | head -n1) ;;
  esac
  if [ -n "$v" ]; then echo "dockerPackageVersion=$v"; else echo "dockerdVersionLine=$("$dockerd" --version 2>/dev/null | head -n1)"; fi
else echo dockerInstalled=0; fi
# dockerd runs when its pid file names a live dockerd process.
pid=$(cat /var/run/docker.pid 2>/dev/null)
if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then echo dockerdRunning=1; else echo dockerdRunning=0; fi
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  echo cgroupV2=1
  if grep -qw memory /sys/fs/cgroup/cgroup.controllers; then echo memoryCgroup=1; else echo memoryCgroup=0; fi
else
  echo cgroupV2=0
  if awk '$1 == "memory" && $4 == 1 {found=1} END {exit !found}' /proc/cgroups 2>/dev/null; then echo memoryCgroup=1; else echo memoryCgroup=0; fi
fi
echo "user=$(id -un)"
if id -nG | tr ' ' '\\n' | grep -qx docker; then echo sessionDocker=1; else echo sessionDocker=0; fi
if getent group docker | cut -d: -f4 | tr ',' '\\n' | grep -qx "$(id -un)"; then echo userDocker=1; else echo userDocker=0; fi
echo "primaryAddress=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p' | head -n1)"
for f in /boot/firmware/cmdline.txt /boot/cmdline.txt; do if [ -f "$f" ]; then echo "cmdlineFile=$f"; break; fi; done
if tr ' ' '\\n' < /proc/cmdline 2>/dev/null | grep -qx cgroup_enable=memory; then echo bootedWithMemoryFlag=1; else echo bootedWithMemoryFlag=0; fi
echo "bootId=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
`;

/** Reads a node's facts (no sudo needed). */
export async function gatherFacts(op: Operator): Promise<NodeFacts> {
  const r = await op.run(FACTS_SCRIPT, { timeoutMs: 60_000 });
  const kv = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const model = kv.get('model');
  return nodeFactsSchema.parse({
    osId: kv.get('osId') ?? 'unknown',
    osVersion: kv.get('osVersion') ?? '',
    osName: kv.get('osName') ?? 'unknown',
    arch: kv.get('arch') ?? 'unknown',
    piModel: model && /raspberry pi/i.test(model) ? model : undefined,
    memoryMb: Math.round(Number(kv.get('memKb') ?? 0) / 1024),
    systemd: kv.get('systemd') === '1',
    dockerInstalled: kv.get('dockerInstalled') === '1',
    dockerVersion: dockerVersionOf(kv.get('dockerPackageVersion'), kv.get('dockerdVersionLine')),
    dockerdRunning: kv.get('dockerdRunning') === '1',
    memoryCgroup: kv.get('memoryCgroup') === '1',
    cgroupV2: kv.get('cgroupV2') === '1',
    user: kv.get('user') ?? op.user,
    sessionInDockerGroup: kv.get('sessionDocker') === '1',
    userInDockerGroup: kv.get('userDocker') === '1',
    primaryAddress: kv.get('primaryAddress') || undefined,
    cmdlineFile: kv.get('cmdlineFile') || undefined,
    bootedWithMemoryCgroupFlag: kv.get('bootedWithMemoryFlag') === '1',
    bootId: kv.get('bootId') || undefined,
  });
}

/**
 * Docker Engine's version as `dockerd --version` prints it (20.10.24+dfsg1, 27.3.1), from a Debian
 * package version (20.10.24+dfsg1-1+deb12u1+b6, 5:27.3.1-1~debian.12~bookworm: no epoch, no Debian
 * revision) or from that line itself ("Docker version 27.3.1, build ce12230").
 */
export function dockerVersionOf(packageVersion: string | undefined, versionLine: string | undefined): string | undefined {
  if (packageVersion) {
    const upstream = packageVersion.trim().replace(/^\d+:/, '');
    const dash = upstream.lastIndexOf('-');
    return (dash > 0 ? upstream.slice(0, dash) : upstream) || undefined;
  }
  return /^Docker version ([^ ,]+)/.exec(versionLine?.trim() ?? '')?.[1];
}
