// Why: `pifaas push NAME --to inventory.yaml` puts a built function image on every node of an
// inventory without a registry or a Docker Hub account: each node gets the image of its own platform
// over SSH, and nodes that already have it get nothing. --registry makes the nodes pull from a LAN
// registry instead. The work is in src/image/side-load.ts.
import { Command } from 'commander';
import { withExamples } from '../cli/command-help.js';
import { formatBytes, formatTable, printResult } from '../cli/output.js';
import { sideLoadFunctionImage, type SideLoadResult } from '../image/side-load.js';
import { loadInventory, selectHosts } from '../inventory/inventory.js';
import { taskListOptions } from '../cli/task-list.js';
import { addSshOptions, connectorFor, type SshFlags } from '../cli/ssh-flags.js';

interface PushFlags extends SshFlags {
  to: string;
  host?: string[];
  image?: string;
  tag: string;
  registry?: string;
  insecureRegistry?: boolean;
  json?: boolean;
}

function humanSummary(r: SideLoadResult): string {
  const lines = [
    formatTable(
      ['NODE', 'PLATFORM', 'STATUS', 'SENT', 'TIME'],
      r.nodes.map((n) => [n.node, n.platform ?? '?', n.status, n.bytes ? formatBytes(n.bytes) : '-', `${n.seconds.toFixed(1)} s`]),
    ),
  ];
  for (const n of r.nodes.filter((x) => x.error)) lines.push(`error: ${n.error?.message}${n.error?.hint ? `\nhint: ${n.error.hint}` : ''}`);
  lines.push(r.ok ? `${r.image} is on ${r.nodes.length} node(s)` : 'some nodes failed; fix them and re-run (nodes that have the image are skipped)');
  return lines.join('\n');
}

export function pushCommand(): Command {
  const cmd = new Command('push')
    .description("send a built function image to every node of an inventory over SSH (each node gets its own platform's image; no registry needed)")
    .argument('<name>', 'function: faas-resnet or faas-digits')
    .requiredOption('--to <inventory>', 'the Ansible YAML inventory of the nodes')
    .option('--host <name...>', 'only these inventory hosts')
    .option('--image <repository>', 'local image repository (default pifaas/NAME)')
    .option('--tag <tag>', 'image tag (as given to pifaas build)', 'latest')
    .option('--registry <registry>', 'let the nodes pull from this registry (filled by pifaas build --push) instead of sending over SSH')
    .option('--insecure-registry', 'the --registry speaks plain HTTP')
    .option('--json', 'print a machine-readable summary');
  addSshOptions(cmd);
  cmd.action(async (name: string, opts: PushFlags) => {
    const inventory = await loadInventory(opts.to);
    const hosts = selectHosts(inventory, opts.host);
    const connector = await connectorFor(inventory, opts, hosts);
    const result = await sideLoadFunctionImage({
      functionName: name,
      inventory,
      hosts,
      connector,
      repository: opts.image,
      tag: opts.tag,
      registry: opts.registry,
      insecureRegistry: opts.insecureRegistry,
      taskList: taskListOptions(opts.json),
    });
    printResult(opts, result, humanSummary);
    if (!result.ok) process.exitCode = 1;
  });
  return withExamples(
    cmd,
    'pifaas build faas-resnet && pifaas push faas-resnet --to inventory.yaml',
    'pifaas push faas-resnet --to inventory.yaml --host pi2 --json',
    'pifaas push faas-resnet --to inventory.yaml --registry 192.168.1.5:5000   # nodes pull from a LAN registry',
  );
}
