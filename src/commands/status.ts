// Why: `pifaas status inventory.yaml` - the swarm's nodes as its manager sees them (role, arch,
// state, availability, Docker version), matched against the inventory.
import { Command } from 'commander';
import { withExamples } from '../cli/command-help.js';
import { formatTable, printResult } from '../cli/output.js';
import { loadInventory } from '../inventory/inventory.js';
import { clusterStatus, type ClusterStatus } from '../swarm/cluster-status.js';
import { addSshOptions, connectorFor, type SshFlags } from '../cli/ssh-flags.js';

function human(s: ClusterStatus): string {
  const rows = s.nodes.map((n) => [
    n.name ?? `(${n.hostname ?? '?'})`,
    n.address ?? '-',
    n.managerStatus ? `${n.role} (${n.managerStatus})` : n.role,
    n.arch ?? '-',
    n.state,
    n.availability ?? '-',
    n.dockerVersion ?? '-',
    n.piModel ?? '',
  ]);
  const lines = [formatTable(['NODE', 'ADDRESS', 'ROLE', 'ARCH', 'STATE', 'AVAILABILITY', 'DOCKER', 'MODEL'], rows)];
  if (s.nodes.some((n) => !n.inInventory)) lines.push('(name in parentheses: a swarm node that is not in the inventory; `pifaas provision --prune` removes it)');
  for (const u of s.unreachable) lines.push(`warning: manager ${u.name}: ${u.error}`);
  return lines.join('\n');
}

export function statusCommand(): Command {
  const cmd = new Command('status')
    .description(
      "show the swarm's nodes: role, arch, state, availability and Docker version (through the first reachable manager); exits 1 when a host of the inventory is not Ready",
    )
    .argument('<inventory>', 'path of the Ansible YAML inventory')
    .option('--json', 'print the nodes as JSON');
  addSshOptions(cmd);
  cmd.action(async (file: string, opts: SshFlags & { json?: boolean }) => {
    const inventory = await loadInventory(file);
    const connector = await connectorFor(inventory, { ...opts, connectRetry: opts.connectRetry ?? 10 }, inventory.managers);
    const status = await clusterStatus(inventory, connector);
    printResult(opts, status, human);
    if (status.nodes.some((n) => n.inInventory && n.state !== 'ready')) process.exitCode = 1;
  });
  return withExamples(cmd, 'pifaas status inventory.yaml', 'pifaas status inventory.yaml --json | jq ".nodes[] | {name, state}"');
}
