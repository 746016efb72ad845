// Why: `pifaas inventory show` prints what pifaas understood from an inventory (hosts, roles,
// addresses, settings) so a user can check a file before burning or provisioning anything.
import { Command } from 'commander';
import { withExamples } from '../cli/command-help.js';
import { formatTable, printResult } from '../cli/output.js';
import { loadInventory } from '../inventory/inventory.js';

export function inventoryCommand(): Command {
  const cmd = new Command('inventory').description('check and show an inventory.yaml');
  const show = new Command('show')
    .description('validate an inventory and print its hosts, roles and addresses (secrets are never shown)')
    .argument('<inventory>', 'path of the Ansible YAML inventory')
    .option('--json', 'print the hosts as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      const inv = await loadInventory(file);
      const hosts = inv.hosts.map((h) => ({
        name: h.name,
        role: h.role,
        address: h.address,
        port: h.port ?? null,
        user: h.user ?? null,
        groups: h.groups,
        privateKeyFile: h.privateKeyFile ?? null,
        hasBecomePassword: h.becomePassword !== undefined,
        settings: { ...h.settings, ...(h.settings.wifi_password ? { wifi_password: '(set)' } : {}) },
      }));
      printResult(opts, { file: inv.file, hosts }, (d) =>
        formatTable(
          ['HOST', 'ROLE', 'ADDRESS', 'USER', 'GROUPS'],
          d.hosts.map((h) => [h.name, h.role, `${h.address}${h.port ? `:${h.port}` : ''}`, h.user ?? '-', h.groups.join(',')]),
        ),
      );
    });
  withExamples(show, 'pifaas inventory show inventory.yaml', 'pifaas inventory show inventory.yaml --json | jq ".hosts[].address"');
  cmd.addCommand(show);
  return withExamples(cmd, 'pifaas inventory show inventory.yaml');
}
