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
docker version >/dev/null 2>&1 || { echo "dockerd did not start; its log:" >&2; tail -n 20 /var/log/docker.log >&2; exit 1; }
`;
}
