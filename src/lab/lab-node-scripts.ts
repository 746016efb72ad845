// Why: a lab node has to look like a small Debian host to the provisioner: its own hostname,
// /etc, /var, /home, /root, /run and /tmp, an sshd and a dockerd started by Debian's own init
// scripts (`service ssh start`, `service docker restart` from an SSH session works as on a host
// without systemd). These are the shell scripts that build that view inside the node's namespaces.
import { shellQuote } from '../operator/shell-quote.js';

/**
 * Runs as the first process of a new net+mount+UTS namespace (unshare --propagation private):
 * drops this namespace's copies of the host's other mounts (so the node never pins another
 * engineer's loop devices, namespaces or container layers), lays out the node's private
 * filesystem view, prints READY and then stays as the holder of the namespaces.
 */
export function holderScript(opts: { nodeDir: string; hostname: string; holderName: string; privateUsr?: boolean }): string {
  const d = shellQuote(opts.nodeDir);
  // A node that starts without Docker gets a /usr of its own too (an overlay: what dpkg removes or
  // installs there lands in the node's upper dir, never in the host's /usr).
  const usr = opts.privateUsr ? 'mount -t overlay pifaas-lab-usr -o lowerdir=/usr,upperdir=/mnt/upper/usr,workdir=/mnt/work/usr /usr\n' : '';
  return `set -e
awk '{print $5}' /proc/self/mountinfo | awk '{print length($0) " " $0}' | sort -rn | cut -d' ' -f2- | while read -r mp; do
  case "$mp" in /|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) ;; *) umount -l "$mp" 2>/dev/null || true ;; esac
done
mount --bind ${d} /mnt
mount -t overlay pifaas-lab-etc -o lowerdir=/etc,upperdir=/mnt/upper/etc,workdir=/mnt/work/etc /etc
mount -t overlay pifaas-lab-var -o lowerdir=/var,upperdir=/mnt/upper/var,workdir=/mnt/work/var /var
mkdir -p /var/lib/docker
mount --bind /mnt/docker /var/lib/docker
mount --bind /mnt/home /home
mount --bind /mnt/root /root
${usr}umount /mnt
mount -t tmpfs -o mode=0755,size=64m pifaas-lab-run /run
mkdir -p /run/lock /run/sshd
mount -t tmpfs -o mode=1777,size=512m pifaas-lab-tmp /tmp
hostname ${shellQuote(opts.hostname)}
echo READY
exec -a ${shellQuote(opts.holderName)} sleep infinity </dev/null >/dev/null 2>&1
`;
}

/**
 * The whole environment of every process pifaas starts in a node (its namespace holder, the scripts
 * run through nsenter): a root login's, never the caller's. Variables such as DOCKER_HOST,
 * DOCKER_CONTEXT, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH or DOCKER_CONFIG name the caller's Docker
 * client setup (`pifaas build`/`push` use them); inside a node they would point its `docker` at
 * another engine than the node's own.
 */
export const NODE_ENVIRONMENT: Readonly<Record<string, string>> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  USER: 'root',
  LOGNAME: 'root',
  SHELL: '/bin/bash',
  LANG: 'C.UTF-8',
};

export interface NodeConfig {
  hostname: string;
  address: string;
  gateway: string;
  prefixLength: number;
  /** All lab nodes (name, address) for /etc/hosts. */
  peers: { name: string; address: string }[];
  authorizedKey: string;
  /** Password of the `pi` user (sudo asks for it). Sent on stdin, never in argv. */
  piPassword: string;
  startDocker: boolean;
}

export const SSHD_CONFIG = `# pifaas lab node: OpenSSH server
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
MaxSessions 64
MaxStartups 100:30:200
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
`;

/**
 * Configures a node from inside its namespaces (run as root through nsenter, script on stdin so
 * the password never shows in a process list): hostname, /etc/hosts, its own SSH host key,
 * users root / pi (sudo with password) / ops (passwordless sudo), then sshd and dockerd through
 * Debian's init scripts. Prints the node's SSH host public key last.
 */
export function configureNodeScript(c: NodeConfig): string {
  const hosts = c.peers.map((p) => `${p.address} ${p.name}`).join('\n');
  return `set -e
ip link set lo up
ip addr add ${c.address}/${c.prefixLength} dev eth0 2>/dev/null || true
ip link set eth0 up
ip route replace default via ${c.gateway}
echo ${shellQuote(c.hostname)} > /etc/hostname
cat > /etc/hosts <<'EOF'
127.0.0.1 localhost
127.0.1.1 ${c.hostname}
::1 localhost ip6-localhost ip6-loopback
${hosts}
EOF
# This node's own identity: an SSH host key and a Docker engine key of its own.
rm -f /etc/ssh/ssh_host_* /etc/docker/key.json
ssh-keygen -q -t ed25519 -N '' -C root@${c.hostname} -f /etc/ssh/ssh_host_ed25519_key
cat > /etc/ssh/sshd_config <<'EOF'
${SSHD_CONFIG}EOF
case "$(getent shadow root | cut -d: -f2)" in '!'*) usermod -p '*' root ;; esac
id pi >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo pi
chpasswd <<'EOF'
pi:${c.piPassword}
EOF
id ops >/dev/null 2>&1 || useradd -m -s /bin/bash ops
usermod -p '*' ops
echo 'ops ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/pifaas-lab-ops
chmod 0440 /etc/sudoers.d/pifaas-lab-ops
for u in root pi ops; do
  home=$(getent passwd "$u" | cut -d: -f6)
  mkdir -p "$home/.ssh"
  echo ${shellQuote(c.authorizedKey)} > "$home/.ssh/authorized_keys"
  chmod 700 "$home/.ssh"; chmod 600 "$home/.ssh/authorized_keys"
  chown -R "$u:" "$home/.ssh"
done
${DOCKER_SANDBOX_FIXES}service ssh start >/dev/null
${c.startDocker ? startDockerScript() : ''}
cat /etc/ssh/ssh_host_ed25519_key.pub
`;
}

/**
 * What a lab node changes in Debian's Docker init files (POSIX sh, run as root in the node; dpkg
 * runs it again after it installs docker.io on a node that started without Docker).
 */
const DOCKER_SANDBOX_FIXES = `# This sandbox lacks CAP_SYS_RESOURCE, so the init script's "ulimit -n 1048576" fails under set -e;
# tolerate that on this node only (a real Debian host is unaffected).
if ! (ulimit -n 1048576) 2>/dev/null; then
  sed -i 's/^\\(\\s*ulimit -[a-z] [a-z0-9]*\\)\\s*$/\\1 || true/' /etc/init.d/docker
fi
# The lab has no route to any registry: swarm tasks use the local image at once instead of first
# waiting ~20 s for a pull to time out (dockerd reads this from /etc/default/docker via the init script).
grep -q DOCKER_SERVICE_PREFER_OFFLINE_IMAGE /etc/default/docker 2>/dev/null || \\
  printf '\\n# pifaas lab: no registry is reachable from this node\\nexport DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1\\n' >> /etc/default/docker
`;

/** Debian's packages of Docker Engine that a node without Docker lacks (docker.io and what only it needs). */
export const DOCKER_PACKAGES = ['docker.io', 'containerd', 'runc', 'tini'] as const;

/**
 * Takes Docker Engine off a node (run as root inside its namespaces, after configureNodeScript), so
 * the node looks like a host where Docker was never installed: the files dpkg lists for the packages
 * are deleted through the node's overlays (overlayfs records whiteouts in the node's upper dirs; the
 * host's /usr, /etc and /var are never written), their entries leave the node's copy of the dpkg
 * database, and their boot links and the docker group go. No maintainer script runs (docker.io's
 * prerm would run `invoke-rc.d docker stop`). Refuses unless /usr, /etc and /var are this node's
 * overlays. dpkg then gets a hook that re-applies the sandbox fixes once docker.io is installed
 * again, and, with aptSources, apt reads only those sources (the lab has no route out) and the node
 * gets no DNS server (an air-gapped site with a LAN mirror).
 */
export function removeDockerScript(opts: { aptSources?: string }): string {
  const pattern = DOCKER_PACKAGES.map((p) => p.replace(/\./g, '\\.')).join('|');
  const sources = opts.aptSources
    ? `rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
printf '%s\\n' ${shellQuote(opts.aptSources.trim())} > /etc/apt/sources.list.d/pifaas-lab.list
find /var/lib/apt/lists -maxdepth 1 -type f -delete
# An air-gapped site: no DNS server either (a lookup fails at once instead of leaving the lab).
rm -f /etc/resolv.conf
echo '# pifaas lab: no DNS server is reachable from this node; apt uses the mirror in /etc/apt/sources.list.d' > /etc/resolv.conf
`
    : '';
  return `set -euo pipefail
for m in usr etc var; do
  if [ "$(findmnt -n -o SOURCE --mountpoint /$m)" != "pifaas-lab-$m" ]; then
    echo "/$m is not this lab node's private overlay; not removing Docker" >&2; exit 1
  fi
done
for p in ${DOCKER_PACKAGES.join(' ')}; do
  list=/var/lib/dpkg/info/$p.list
  [ -f "$list" ] || continue
  while IFS= read -r f; do
    if [ -d "$f" ]; then continue; fi # directories (and /lib, /sbin: links to them) go below, if empty
    if [ ! -e "$f" ] && [ ! -L "$f" ]; then continue; fi
    d=$(realpath -e "$(dirname "$f")")
    case "$d/" in
      /usr/*|/etc/*|/var/*) rm -f "$d/$(basename "$f")" ;;
      *) echo "not removing $f: outside this node's overlays" >&2; exit 1 ;;
    esac
  done < "$list"
  sort -r "$list" | while IFS= read -r f; do
    if [ -d "$f" ] && [ ! -L "$f" ]; then rmdir "$f" 2>/dev/null || true; fi
  done
  rm -f /var/lib/dpkg/info/"$p".*
done
# A fresh host has no downloaded .deb files either (apt must fetch docker.io from its sources).
find /var/cache/apt/archives -maxdepth 1 -name '*.deb' -delete
awk 'BEGIN { RS = ""; ORS = "\\n\\n" } !/^Package: (${pattern})\\n/' /var/lib/dpkg/status > /var/lib/dpkg/status.pifaas-lab
mv /var/lib/dpkg/status.pifaas-lab /var/lib/dpkg/status
rm -f /etc/rc[0-6S].d/[SK][0-9][0-9]docker /etc/systemd/system/*.wants/docker.* /etc/systemd/system/*.wants/containerd.service
rm -f /var/lib/systemd/deb-systemd-helper-enabled/docker.* /var/lib/systemd/deb-systemd-helper-enabled/containerd.service
find /var/lib/systemd/deb-systemd-helper-enabled -path '*.wants/*' \\( -name 'docker.*' -o -name containerd.service \\) -delete 2>/dev/null || true
groupdel docker 2>/dev/null || true
mkdir -p /etc/pifaas-lab /etc/dpkg/dpkg.cfg.d
printf '%s\\n' '#!/bin/sh' '# pifaas lab: after dpkg installs docker.io on this node, adapt its init files to the lab.' \\
  '[ -f /etc/init.d/docker ] || exit 0' > /etc/pifaas-lab/docker-sandbox-fixes.sh
printf '%s' ${shellQuote(DOCKER_SANDBOX_FIXES)} >> /etc/pifaas-lab/docker-sandbox-fixes.sh
echo 'post-invoke=/bin/sh /etc/pifaas-lab/docker-sandbox-fixes.sh' > /etc/dpkg/dpkg.cfg.d/pifaas-lab
${sources}if command -v dockerd >/dev/null || dpkg-query -W docker.io >/dev/null 2>&1; then echo "Docker is still installed on this node" >&2; exit 1; fi
`;
}

/** Starts dockerd through Debian's init script and waits until it answers. */
export function startDockerScript(): string {
  return `service docker start >/dev/null 2>&1 || true
for i in $(seq 1 150); do
  if [ -S /run/docker.sock ] && docker version >/dev/null 2>&1; then break; fi
  sleep 0.2
done
if ! answer=$(docker version 2>&1 >/dev/null); then
  # The reason goes last: an error shows the last lines.
  echo "dockerd's log (last lines):" >&2; tail -n 20 /var/log/docker.log >&2
  echo "dockerd did not answer 'docker version' within 30 s: $(printf '%s' "$answer" | tail -n 1)" >&2
  exit 1
fi
`;
}

/** Raspberry Pi OS's cmdline.txt (one line; the PARTUUID is the node's own). */
export function piCmdline(partUuid: string): string {
  return `console=serial0,115200 console=tty1 root=PARTUUID=${partUuid}-02 rootfstype=ext4 fsck.repair=yes rootwait`;
}

export interface EmulatedHardware {
  /** The node's holder process name (pifaas-lab:<lab>:<index>): the power cycle never stops it. */
  holderName: string;
  /** Device-tree model: the node looks like this Raspberry Pi (undefined: not a Pi). */
  piModel?: string;
  /** Initial /boot/firmware/cmdline.txt of a Pi node. */
  cmdline?: string;
  /** The memory cgroup when the kernel command line does not say otherwise (a Pi kernel: off). */
  memoryCgroup: boolean;
  /** How long a rebooting node stays down (SSH refused). */
  downSeconds: number;
}

/** Refuses (exit 1) unless /usr, /etc and /var are this lab node's own overlays: never on this machine. */
const USR_IS_PRIVATE = `for m in usr etc var; do
  [ "$(findmnt -n -o SOURCE --mountpoint /$m)" = pifaas-lab-$m ] || { echo "/$m is not this lab node's private overlay; refusing" >&2; exit 1; }
done`;

/**
 * What the node's kernel shows after a boot, by a Raspberry Pi kernel's rules: the memory cgroup is
 * on when cmdline.txt says cgroup_enable=memory (off with cgroup_disable=memory, or when
 * /var/lib/pifaas-lab/kernel-without-memory-cgroup exists; else the node's default), /proc/cmdline is
 * that line, and the boot gets a new boot_id. Shown through bind mounts
 * over /sys/fs/cgroup/cgroup.controllers (cgroup v2) or /proc/cgroups (v1) in this node's own mount
 * namespace; the files behind them live in /run (a boot clears it). Counts boots in /var/lib/pifaas-lab.
 */
function kernelBootScript(hw: EmulatedHardware): string {
  return `#!/bin/bash
# pifaas lab: what this node's (emulated) kernel shows after a boot. Made by \`pifaas lab up\`.
set -euo pipefail
${USR_IS_PRIVATE}
memory=${hw.memoryCgroup ? 1 : 0}
cmdline=
if [ -f /boot/firmware/cmdline.txt ]; then
  cmdline=$(head -n 1 /boot/firmware/cmdline.txt | tr -d '\\r')
  for w in $cmdline; do
    case "$w" in cgroup_enable=memory) memory=1 ;; cgroup_disable=memory) memory=0 ;; esac
  done
fi
# A kernel built without the memory cgroup (tests create this file to play one).
if [ -e /var/lib/pifaas-lab/kernel-without-memory-cgroup ]; then memory=0; fi
k=/run/pifaas-lab/kernel
mkdir -p "$k"
show() { umount "$1" 2>/dev/null || true; mount --bind "$2" "$1"; }
cat /proc/sys/kernel/random/uuid > "$k/boot_id"
show /proc/sys/kernel/random/boot_id "$k/boot_id"
if [ -n "$cmdline" ]; then printf '%s\\n' "$cmdline" > "$k/cmdline"; show /proc/cmdline "$k/cmdline"; fi
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  umount /sys/fs/cgroup/cgroup.controllers 2>/dev/null || true
  { tr ' ' '\\n' < /sys/fs/cgroup/cgroup.controllers | grep -vx -e memory -e '' || true; if [ $memory = 1 ]; then echo memory; fi; } | paste -sd' ' > "$k/cgroup.controllers"
  show /sys/fs/cgroup/cgroup.controllers "$k/cgroup.controllers"
else
  umount /proc/cgroups 2>/dev/null || true
  awk -v m=$memory 'BEGIN { OFS = "\\t" } $1 == "memory" { $4 = m } { print }' /proc/cgroups > "$k/cgroups"
  show /proc/cgroups "$k/cgroups"
fi
mkdir -p /var/lib/pifaas-lab
boots=$(( $(cat /var/lib/pifaas-lab/boot-count 2>/dev/null || echo 0) + 1 ))
echo "$boots" > /var/lib/pifaas-lab/boot-count
echo "$(date -u +%FT%TZ) boot $boots: memory cgroup $([ $memory = 1 ] && echo on || echo off); cmdline: \${cmdline:-(none)}" >> /var/log/pifaas-lab-boot.log
`;
}

/**
 * A reboot of the node, run detached by the reboot and `systemctl reboot` shims: every process of
 * the node stops (found as lab-processes.ts finds them: in the node's mount or network namespace,
 * plus their descendants, i.e. containers; never the namespace holder or this script), the node
 * stays down for a few seconds (SSH refused), and boots: fresh /run and /tmp, no mounts, links or
 * firewall rules left by Docker, the kernel view from cmdline.txt, then sshd and, when it is
 * enabled at boot (/etc/rc2.d), dockerd - started as `pifaas lab up` starts them.
 */
function powerCycleScript(hw: EmulatedHardware): string {
  return `#!/bin/bash
# pifaas lab: an emulated reboot of this node. Made by \`pifaas lab up\`.
set -uo pipefail
cd /
${USR_IS_PRIVATE}
exec >>/var/log/pifaas-lab-boot.log 2>&1 </dev/null
me=$$
mnt=$(readlink /proc/self/ns/mnt)
net=$(readlink /proc/self/ns/net)
if [ "$net" = "$(readlink /proc/1/ns/net)" ] || [ "$mnt" = "$(readlink /proc/1/ns/mnt)" ]; then echo "in this machine's own namespaces; not rebooting"; exit 1; fi
holder=
for p in /proc/[0-9]*; do
  case "$(tr '\\0' ' ' < "$p/cmdline" 2>/dev/null)" in
    ${shellQuote(`${hw.holderName} `)}*) [ "$(readlink "$p/ns/net")" = "$net" ] && holder=\${p#/proc/} ;;
  esac
done
[ -n "$holder" ] || { echo "the node's namespace holder is not running; not rebooting"; exit 1; }
node_pids() {
  local p pid roots=
  for p in /proc/[0-9]*; do
    pid=\${p#/proc/}
    if [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$mnt" ] || [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$net" ]; then roots="$roots $pid"; fi
  done
  ps -e -o pid=,ppid= | awk -v roots="$roots" -v me="$me" -v holder="$holder" '
    { parent[$1] = $2 }
    END {
      n = split(roots, r, " "); for (i = 1; i <= n; i++) if (r[i] in parent) node[r[i]] = 1
      mine[me] = 1
      do { grew = 0; for (p in parent) {
        if (!(p in node) && (parent[p] in node)) { node[p] = 1; grew = 1 }
        if (!(p in mine) && (parent[p] in mine)) { mine[p] = 1; grew = 1 }
      } } while (grew)
      for (p in node) if (!(p in mine) && p != holder && p != 1) print p
    }'
}
running() { local p; for p in "$@"; do grep -qs '^State:[[:space:]]*[^Z]' "/proc/$p/status" && echo "$p"; done; }
echo "$(date -u +%FT%TZ) reboot: stopping every process of $(hostname)"
sleep 0.5
pids=$(node_pids)
kill -TERM $pids 2>/dev/null
for i in $(seq 1 100); do [ -z "$(running $pids)" ] && break; sleep 0.1; done
left=$(running $pids); [ -z "$left" ] || kill -KILL $left 2>/dev/null
sleep 0.2
left=$(node_pids); [ -z "$left" ] || kill -KILL $left 2>/dev/null
echo "$(date -u +%FT%TZ) down"
findmnt -rn -o TARGET | grep '^/var/lib/docker/.' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
umount -l /run && mount -t tmpfs -o mode=0755,size=64m pifaas-lab-run /run && mkdir -p /run/lock /run/sshd
umount -l /tmp && mount -t tmpfs -o mode=1777,size=512m pifaas-lab-tmp /tmp
ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -vx -e lo -e eth0 | while read -r l; do ip link del "$l" 2>/dev/null || true; done
for t in filter nat mangle; do iptables -w -t $t -F 2>/dev/null; iptables -w -t $t -X 2>/dev/null; done
sleep ${hw.downSeconds}
/usr/lib/pifaas-lab/kernel-boot || { echo "kernel-boot failed"; exit 1; }
service ssh start
if ls /etc/rc2.d/S[0-9][0-9]docker >/dev/null 2>&1 && command -v dockerd >/dev/null; then
${startDockerScript()}fi
echo "$(date -u +%FT%TZ) up"
`;
}

/** /usr/sbin/reboot on an emulated node: starts the power cycle, detached, and returns (as systemd does). */
const REBOOT_SHIM = `#!/bin/sh
# pifaas lab: reboots this lab node (emulated: /usr/lib/pifaas-lab/power-cycle). Made by \`pifaas lab up\`.
if [ "$(id -u)" != 0 ]; then echo "Call to Reboot failed: Access denied" >&2; exit 1; fi
setsid -f /usr/lib/pifaas-lab/power-cycle </dev/null >/dev/null 2>&1
`;

/** /usr/bin/systemctl on an emulated node: `systemctl reboot` reboots it; anything else is the real systemctl. */
const SYSTEMCTL_SHIM = `#!/bin/bash
# pifaas lab: \`systemctl reboot\` reboots this lab node (emulated); the rest goes to the real systemctl.
for a in "$@"; do
  case "$a" in -*) ;; reboot) exec /usr/sbin/reboot ;; *) break ;; esac
done
exec -a "$0" /usr/lib/pifaas-lab/systemctl "$@"
`;

/**
 * Makes a node look like hardware pifaas has to handle (run as root inside the node, after
 * configureNodeScript), only in the node's own mount namespace and /usr overlay (refuses unless
 * /usr is that overlay): a Pi's device tree (a tmpfs over /sys/firmware with devicetree/base/model;
 * /proc/device-tree cannot be made, and on a Pi it links there) and boot partition (/boot/firmware
 * with a one-line cmdline.txt, on a tmpfs over /boot), a kernel whose memory cgroup follows the Pi
 * rules (kernelBootScript), and `reboot` / `systemctl reboot` replaced by the power cycle.
 */
export function emulatedHardwareScript(hw: EmulatedHardware): string {
  const pi = hw.piModel
    ? `mount -t tmpfs -o mode=0755,size=1m pifaas-lab-firmware /sys/firmware
mkdir -p /sys/firmware/devicetree/base
printf '%s\\0' ${shellQuote(hw.piModel)} > /sys/firmware/devicetree/base/model
[ -d /boot ] || { echo "this machine has no /boot directory to mount the node's boot partition on" >&2; exit 1; }
mount -t tmpfs -o mode=0755,size=1m pifaas-lab-boot /boot
mkdir /boot/firmware
mount -t tmpfs -o mode=0755,size=64m pifaas-lab-bootfs /boot/firmware
printf '%s\\n' ${shellQuote(hw.cmdline ?? piCmdline('6c586e13'))} > /boot/firmware/cmdline.txt
printf '%s\\n' '# pifaas lab: a Raspberry Pi boot partition' 'arm_64bit=1' 'dtparam=audio=on' > /boot/firmware/config.txt
chmod 0755 /boot/firmware/cmdline.txt /boot/firmware/config.txt
`
    : '';
  const files: [string, string][] = [
    ['/usr/lib/pifaas-lab/kernel-boot', kernelBootScript(hw)],
    ['/usr/lib/pifaas-lab/power-cycle', powerCycleScript(hw)],
    ['/usr/sbin/reboot', REBOOT_SHIM],
  ];
  return `set -euo pipefail
${USR_IS_PRIVATE}
mkdir -p /usr/lib/pifaas-lab
${files.map(([f, text]) => `rm -f ${f}\nprintf '%s' ${shellQuote(text)} > ${f}\nchmod 0755 ${f}`).join('\n')}
if [ -e /usr/bin/systemctl ] && [ ! -e /usr/lib/pifaas-lab/systemctl ]; then
  cp "$(readlink -f /usr/bin/systemctl)" /usr/lib/pifaas-lab/systemctl
  rm -f /usr/bin/systemctl
  printf '%s' ${shellQuote(SYSTEMCTL_SHIM)} > /usr/bin/systemctl
  chmod 0755 /usr/bin/systemctl
fi
${pi}/usr/lib/pifaas-lab/kernel-boot
`;
}
