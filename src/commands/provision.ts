// Why: `pifaas provision inventory.yaml` - Docker and one swarm on every host of an inventory, over
// SSH, in parallel, idempotent. Parses flags, asks for secrets/host keys up front on a terminal,
// runs src/swarm/provision.ts and prints a per-node summary (or JSON).
import { Command, Option } from 'commander';
import { withExamples } from '../cli/command-help.js';
import { formatTable, printResult } from '../cli/output.js';
import { addSshOptions, connectorFor, parseSeconds, type SshFlags } from '../cli/ssh-flags.js';
import { loadInventory, selectHosts } from '../inventory/inventory.js';
import { defaultClusterSteps } from '../swarm/cluster-steps.js';
import { provision, type ProvisionResult } from '../swarm/provision.js';

interface ProvisionFlags extends SshFlags {
  host?: string[];
  force?: boolean;
  prune?: boolean;
  fixCgroups?: boolean;
  dockerInstall?: 'package' | 'convenience-script';
  nodeTimeout: number;
  json?: boolean;
}

function humanSummary(r: ProvisionResult): string {
  const rows = r.nodes.map((n) => [n.name, n.role, n.status, n.status === 'failed' ? (n.error?.message.split('\n')[0] ?? '') : n.changes.join('; ') || '-']);
  const lines = [formatTable(['NODE', 'ROLE', 'STATUS', 'DETAIL'], rows)];
  for (const c of r.clusterSteps) lines.push(`${c.title}: ${c.status}${c.detail ? ` (${c.detail})` : ''}`);
  if (r.swarm.strangers.length) {
    lines.push(
      `swarm nodes not in the inventory: ${r.swarm.strangers.map((s) => `${s.hostname || s.id} (${s.state}${s.removed ? ', removed' : ''})`).join(', ')}${
        r.swarm.strangers.some((s) => !s.removed) ? ' - left alone; --prune removes them' : ''
      }`,
    );
  }
  for (const n of r.nodes) for (const w of n.warnings) lines.push(`warning: ${w}`);
  if (r.swarm.error) lines.push(`error: swarm: ${r.swarm.error.message}${r.swarm.error.hint ? `\nhint: ${r.swarm.error.hint}` : ''}`);
  for (const n of r.nodes.filter((x) => x.error)) lines.push(`error: ${n.error?.message}${n.error?.hint ? `\nhint: ${n.error.hint}` : ''}`);
  for (const c of r.clusterSteps.filter((x) => x.error)) lines.push(`error: ${c.title}: ${c.error?.message}${c.error?.hint ? `\nhint: ${c.error.hint}` : ''}`);
  lines.push(r.ok ? `swarm ${r.swarm.clusterId?.slice(0, 12) ?? ''} ready: ${r.nodes.length} node(s) provisioned` : 'provisioning finished with errors; fix them and re-run (finished steps are skipped)');
  return lines.join('\n');
}

export function provisionCommand(): Command {
  const cmd = new Command('provision')
    .description('install Docker on every host of an inventory, form one Docker Swarm and put the OpenFaaS stack on it, over SSH (idempotent: re-run any time)')
    .argument('<inventory>', 'path of the Ansible YAML inventory')
    .option('--host <name...>', 'only these inventory hosts (plus the first manager, to join the swarm)')
    .option('--force', 'make nodes that are in another swarm leave it and join this one')
    .option('--prune', 'remove swarm nodes that are not in the inventory')
    .option('--fix-cgroups', 'on Pis without the memory cgroup: add cgroup_enable=memory cgroup_memory=1 to cmdline.txt and reboot')
    .addOption(new Option('--docker-install <method>', 'how to install Docker where it is absent').choices(['package', 'convenience-script']))
    .option('--node-timeout <seconds>', 'give up on a node after this long', parseSeconds, 1200)
    .option('--json', 'print a machine-readable summary');
  addSshOptions(cmd);
  cmd.action(async (file: string, opts: ProvisionFlags) => {
    const inventory = await loadInventory(file);
    const hosts = selectHosts(inventory, opts.host);
    const connector = await connectorFor(inventory, opts, hosts);
    const result = await provision(inventory, {
      connector,
      hosts,
      force: opts.force,
      prune: opts.prune,
      fixCgroups: opts.fixCgroups,
      dockerInstall: opts.dockerInstall,
      nodeTimeoutMs: opts.nodeTimeout * 1000,
      renderer: opts.json ? 'silent' : process.stdout.isTTY ? 'default' : 'simple',
      clusterSteps: defaultClusterSteps(),
    });
    printResult(opts, result, humanSummary);
    if (!result.ok) process.exitCode = 1;
  });
  return withExamples(
    cmd,
    'pifaas provision inventory.yaml --accept-new-host-keys     # first run: record the Pis\' host keys',
    'PIFAAS_BECOME_PASSWORD=... pifaas provision inventory.yaml  # sudo password from the environment',
    'pifaas provision inventory.yaml --host pi3 --json           # one node, JSON summary',
  );
}
