// Why: every node needs Docker Engine running with sane settings before it can join the swarm.
// Each step here checks first and changes only what differs (so a second run reports
// "unchanged"): install when absent, daemon.json merged with what the user has, a restart only
// when that file changed, the SSH user in the docker group, and the memory cgroup on a Pi.
import { addCgroupFlags, CGROUP_FLAGS } from '../burn/cmdline.js';
import { UserError } from '../user-error.js';
import { DEFAULT_DOCKER_SOCKET, type Operator } from '../operator/operator.js';
import { shellQuote } from '../operator/shell-quote.js';
import type { NodeFacts } from './node-facts.js';

export const DAEMON_JSON = '/etc/docker/daemon.json';
/** Lowest Docker API version accepted from clients on Docker 29+ (old OpenFaaS components speak 1.30). */
export const MIN_API_VERSION = '1.24';

export type DockerInstallMethod = 'package' | 'convenience-script';

/** Installs Docker Engine (Debian/Raspberry Pi OS/Ubuntu package, or Docker's convenience script). */
export async function installDocker(op: Operator, facts: NodeFacts, method: DockerInstallMethod): Promise<void> {
  if (method === 'convenience-script') {
    const fetched = await op.run(`curl -fsSL --connect-timeout 20 --max-time 300 ${CONVENIENCE_SCRIPT_URL} -o /tmp/get-docker.sh`, { sudo: true, check: false, timeoutMs: 6 * 60_000 });
    if (fetched.code !== 0) {
      throw new UserError(
        `${op.name}: could not download Docker's convenience script from ${CONVENIENCE_SCRIPT_URL}${lastLines(fetched)}`,
        'the node needs HTTPS access to get.docker.com and download.docker.com (and curl); or install the distribution package: --docker-install package (pifaas_docker_install: package)',
      );
    }
    await op.run('sh /tmp/get-docker.sh && rm -f /tmp/get-docker.sh', { sudo: true, timeoutMs: 20 * 60_000 });
    return;
  }
  if (!['debian', 'raspbian', 'ubuntu'].includes(facts.osId)) {
    throw new UserError(
      `${op.name}: Docker is not installed and ${facts.osName} has no package pifaas knows`,
      'install Docker Engine yourself, or set pifaas_docker_install: convenience-script in the inventory',
    );
  }
  const update = await op.run('DEBIAN_FRONTEND=noninteractive apt-get update -q', { sudo: true, check: false, timeoutMs: 10 * 60_000 });
  if (update.code !== 0) {
    throw new UserError(
      `${op.name}: apt-get update failed, so Docker cannot be installed${lastLines(update)}`,
      'the node must reach its apt sources (/etc/apt/sources.list*: the internet or a local mirror); fix that on the node and re-run',
    );
  }
  // Unattended: keep any config file the user changed (a docker.io that was removed but not purged
  // leaves its conffiles; dpkg would otherwise stop at a question nobody can answer).
  await op.run(
    'DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold docker.io </dev/null',
    { sudo: true, timeoutMs: 20 * 60_000 },
  );
}

const CONVENIENCE_SCRIPT_URL = 'https://get.docker.com';

/** The last lines a failed command printed, for an error message (": ..." or nothing). */
function lastLines(r: { stdout: string; stderr: string }): string {
  const text = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-4).join('\n  ');
  return text ? `:\n  ${text}` : '';
}

/** Is dockerd running (answering on its socket)? Checked as root. */
export async function dockerRunning(op: Operator): Promise<boolean> {
  const r = await op.run('docker version --format "{{.Server.Version}}"', { sudo: true, check: false, timeoutMs: 30_000 });
  return r.code === 0;
}

/**
 * Starts dockerd and enables it at boot (systemctl where systemd runs, else service + update-rc.d).
 * `running`: whether dockerd runs, when the caller already asked (dockerRunning()).
 */
export async function enableAndStartDocker(op: Operator, facts: NodeFacts, running?: boolean): Promise<string[]> {
  const changes: string[] = [];
  if (facts.systemd) {
    const enabled = await op.run('systemctl is-enabled docker', { check: false });
    if (enabled.stdout.trim() !== 'enabled') {
      await op.run('systemctl enable docker', { sudo: true });
      changes.push('enabled docker at boot');
    }
  } else {
    const rc = await op.run('ls /etc/rc2.d/ 2>/dev/null | grep -q "^S[0-9]*docker$"', { check: false });
    if (rc.code !== 0) {
      const r = await op.run('command -v update-rc.d >/dev/null && update-rc.d docker defaults', { sudo: true, check: false });
      if (r.code === 0) changes.push('enabled docker at boot');
    }
  }
  // The facts saw a dockerd process: running. Otherwise ask the daemon itself before starting it (the
  // pid file may live elsewhere, or /proc hide other users' processes).
  if (!(running ?? (facts.dockerdRunning || (await dockerRunning(op))))) {
    await op.run(facts.systemd ? 'systemctl start docker' : 'service docker start', { sudo: true, timeoutMs: 120_000 });
    await waitForDocker(op);
    changes.push('started dockerd');
  }
  return changes;
}

export async function restartDocker(op: Operator, facts: NodeFacts): Promise<void> {
  await op.run(facts.systemd ? 'systemctl restart docker' : 'service docker restart', { sudo: true, timeoutMs: 180_000 });
  await waitForDocker(op);
}

async function waitForDocker(op: Operator): Promise<void> {
  // `docker version` (a Go binary start, costly on a small board) only once the socket is there.
  const r = await op.run(`for i in $(seq 1 300); do if [ -S ${DEFAULT_DOCKER_SOCKET} ] && docker version >/dev/null 2>&1; then exit 0; fi; sleep 0.2; done; exit 1`, {
    sudo: true,
    check: false,
    timeoutMs: 90_000,
  });
  if (r.code !== 0) {
    const log = await op.run('journalctl -u docker -n 15 --no-pager 2>/dev/null || tail -n 15 /var/log/docker.log 2>/dev/null', { sudo: true, check: false });
    throw new UserError(`${op.name}: dockerd did not come up after a (re)start:\n${log.stdout.trim()}`, `check ${DAEMON_JSON} on the node and the Docker log above`);
  }
}

function majorOf(version: string | undefined): number {
  return Number(/^(\d+)/.exec(version ?? '')?.[1] ?? 0);
}

/** The daemon.json pifaas wants, merged into what is there (the user's own keys win where they overlap). */
export function mergeDaemonConfig(existing: Record<string, unknown>, dockerVersion: string | undefined): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...existing };
  if (merged['log-driver'] === undefined) merged['log-driver'] = 'json-file';
  if (merged['log-driver'] === 'json-file' || merged['log-driver'] === 'local') {
    const opts = (typeof merged['log-opts'] === 'object' && merged['log-opts'] !== null ? merged['log-opts'] : {}) as Record<string, unknown>;
    merged['log-opts'] = { 'max-size': '10m', 'max-file': '3', ...opts };
  }
  // Docker 29 refuses API clients older than 1.44 unless told otherwise; older engines reject the key.
  if (majorOf(dockerVersion) >= 29 && merged['min-api-version'] === undefined) merged['min-api-version'] = MIN_API_VERSION;
  return merged;
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Writes the merged daemon.json when it differs; returns true when it changed (dockerd needs a restart). */
export async function ensureDaemonConfig(op: Operator, facts: NodeFacts): Promise<boolean> {
  const raw = await op.readFile(DAEMON_JSON, { sudo: true });
  let existing: Record<string, unknown> = {};
  if (raw && raw.toString('utf8').trim()) {
    try {
      const parsed: unknown = JSON.parse(raw.toString('utf8'));
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
      existing = parsed as Record<string, unknown>;
    } catch (e) {
      throw new UserError(`${op.name}: ${DAEMON_JSON} is not valid JSON (${(e as Error).message})`, `fix or remove ${DAEMON_JSON} on the node, then re-run`);
    }
  }
  const merged = mergeDaemonConfig(existing, facts.dockerVersion);
  if (raw && stableJson(merged) === stableJson(existing)) return false;
  await op.writeFile(DAEMON_JSON, `${JSON.stringify(merged, null, 2)}\n`, { sudo: true, mode: 0o644 });
  return true;
}

/** Adds the login user to the docker group; returns true when it did (the connection must be re-opened). */
export async function ensureDockerGroup(op: Operator, facts: NodeFacts): Promise<boolean> {
  if (facts.user === 'root' || facts.userInDockerGroup) return false;
  await op.run(`getent group docker >/dev/null || groupadd docker; usermod -aG docker ${shellQuote(facts.user)}`, { sudo: true });
  return true;
}

export interface MemoryCgroupOutcome {
  /** 'ok': enabled; 'warning': not enabled and not fixed here (message says why and what to do); 'rebooting': a reboot was started. */
  result: 'ok' | 'rebooting' | 'warning';
  message?: string;
  /** With 'rebooting': the flags were added to cmdline.txt now (false: it had them, the node just had not booted with them). */
  wroteFlags?: boolean;
}

/**
 * The memory cgroup is needed for container memory limits. On a Pi the fix is two kernel flags in
 * cmdline.txt and a reboot, done only when asked (fix); without it the node gets a warning that
 * says how, and is provisioned anyway. Elsewhere the user has to fix the kernel command line.
 * The caller waits for the node after 'rebooting' (the boot id changes).
 */
export async function ensureMemoryCgroup(op: Operator, facts: NodeFacts, fix: boolean): Promise<MemoryCgroupOutcome> {
  if (facts.memoryCgroup) return { result: 'ok' };
  if (!facts.piModel || !facts.cmdlineFile) {
    return { result: 'warning', message: `${op.name}: the memory cgroup is not enabled; container memory limits will not apply (enable it on the kernel command line)` };
  }
  if (!fix) {
    return {
      result: 'warning',
      message: `${op.name}: the memory cgroup is not enabled on this ${facts.piModel}, so container memory limits will not apply; re-run with --fix-cgroups (or set pifaas_fix_cgroups: true) to add ${CGROUP_FLAGS.join(' ')} to ${facts.cmdlineFile} and reboot the node`,
    };
  }
  const raw = await op.readFile(facts.cmdlineFile, { sudo: true });
  if (raw === undefined) throw new UserError(`${op.name}: ${facts.cmdlineFile} disappeared while provisioning`, 'check the boot partition of the node and re-run');
  const current = raw.toString('utf8');
  const next = addCgroupFlags(current);
  const wroteFlags = next.trim() !== current.trim();
  if (!wroteFlags && facts.bootedWithMemoryCgroupFlag) {
    // Rebooting again would change nothing (and would on every run).
    throw new UserError(
      `${op.name}: the kernel was booted with cgroup_enable=memory (from ${facts.cmdlineFile}) and the memory cgroup is still not enabled`,
      `this kernel lacks the memory cgroup, or something on its command line disables it again (cgroup_disable=memory); check ${facts.cmdlineFile} and the kernel, then re-run`,
    );
  }
  // 0755: on the FAT boot partition (mounted with the default fmask 0022) every file is 0755 and
  // vfat refuses a chmod to any mode it cannot store, such as 0644.
  if (wroteFlags) await op.writeFile(facts.cmdlineFile, next, { sudo: true, mode: 0o755 });
  // Detached and off the SSH channel: the command returns at once and the session ends with the node.
  await op.run('nohup sh -c "sleep 1; systemctl reboot || reboot" </dev/null >/dev/null 2>&1 &', { sudo: true });
  return { result: 'rebooting', wroteFlags };
}
