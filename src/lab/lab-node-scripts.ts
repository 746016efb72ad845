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
export function holderScript(opts: { nodeDir: string; hostname: string; holderName: string }): string {
  const d = shellQuote(opts.nodeDir);
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
umount /mnt
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
# This sandbox lacks CAP_SYS_RESOURCE, so the init script's "ulimit -n 1048576" fails under set -e;
# tolerate that on this node only (a real Debian host is unaffected).
if ! (ulimit -n 1048576) 2>/dev/null; then
  sed -i 's/^\\(\\s*ulimit -[a-z] [a-z0-9]*\\)\\s*$/\\1 || true/' /etc/init.d/docker
fi
# The lab has no route to any registry: swarm tasks use the local image at once instead of first
# waiting ~20 s for a pull to time out (dockerd reads this from /etc/default/docker via the init script).
grep -q DOCKER_SERVICE_PREFER_OFFLINE_IMAGE /etc/default/docker 2>/dev/null || \
  printf '\n# pifaas lab: no registry is reachable from this node\nexport DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1\n' >> /etc/default/docker
service ssh start >/dev/null
${c.startDocker ? startDockerScript() : ''}
cat /etc/ssh/ssh_host_ed25519_key.pub
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
