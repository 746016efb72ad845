// Why: `pifaas lab up|down|ls` - a real multi-node cluster on this Linux machine (network
// namespaces, sshd, dockerd) to try pifaas without Pis; the work is done by src/lab/lab.ts.
import { Command, InvalidArgumentError, Option } from 'commander';
import { Listr } from 'listr2';
import { withExamples } from '../cli/command-help.js';
import { formatTable, printResult } from '../cli/output.js';
import { DEFAULT_LAB_NAME, DEFAULT_LAB_NODES, DEFAULT_LAB_SUBNET, DEFAULT_PI_MODEL, labDown, labUp, listLabs, type Lab, type LabUser } from '../lab/lab.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number, at least 1');
  return n;
}

function nodeNumbers(v: string): number[] {
  const parts = v.split(',').map((p) => p.trim());
  if (!parts.length || parts.some((p) => !/^[1-9]\d*$/.test(p))) throw new InvalidArgumentError('expected node numbers separated by commas, e.g. 2 or 2,3');
  return parts.map(Number);
}

interface UpFlags {
  name: string;
  nodes: number;
  subnet: string;
  dir?: string;
  managers: number;
  user: LabUser;
  docker: boolean;
  withoutDocker?: number[];
  aptSource?: string;
  pi?: number[];
  piModel: string;
  withoutMemoryCgroup?: number[];
  json?: boolean;
}

function hardwareOf(lab: Lab, index: number): string {
  const parts = [lab.pi.includes(index) ? lab.piModel : '', lab.withoutMemoryCgroup.includes(index) ? 'no memory cgroup' : ''].filter(Boolean);
  return parts.length ? parts.join(', ') : '-';
}

function humanLab(lab: Lab): string {
  return [
    formatTable(
      ['NODE', 'ROLE', 'ADDRESS', 'DOCKER', 'EMULATED HARDWARE'],
      lab.nodes.map((n) => [n.name, n.role, n.address, lab.withoutDocker.includes(n.index) ? 'not installed' : 'installed', hardwareOf(lab, n.index)]),
    ),
    '',
    `inventory:   ${lab.inventoryFile}`,
    `ssh key:     ${lab.sshKeyFile}  (users root, pi [sudo with password], ops [passwordless sudo])`,
    `known_hosts: ${lab.knownHostsFile}`,
    '',
    `next: pifaas provision ${lab.inventoryFile}`,
    `      ssh -i ${lab.sshKeyFile} -o UserKnownHostsFile=${lab.knownHostsFile} pi@${lab.nodes[0]?.address ?? ''}`,
    `done: pifaas lab down --name ${lab.name}`,
  ].join('\n');
}

export function labCommand(): Command {
  const cmd = new Command('lab').description('a real multi-node cluster on this Linux machine (root): network namespaces with sshd and dockerd');

  const up = new Command('up')
    .description('make (or check) a lab: N nodes on one bridge, each with its own hostname, /etc, sshd and dockerd; writes an inventory.yaml and an SSH key')
    .option('--nodes <n>', 'number of nodes', positiveInt, DEFAULT_LAB_NODES)
    .option('--name <name>', 'lab name (1-8 lowercase letters/digits); several labs can run at once', DEFAULT_LAB_NAME)
    .option('--subnet <cidr>', 'IPv4 subnet of the lab bridge (.1 is this machine, nodes .11 up)', DEFAULT_LAB_SUBNET)
    .option('--managers <n>', 'how many nodes are swarm managers in the inventory', positiveInt, 1)
    .option('--dir <dir>', 'where node data, the key and the inventory go (default /var/lib/pifaas/lab/<name>)')
    .addOption(new Option('--user <user>', 'the inventory\'s SSH user').choices(['pi', 'root', 'ops']).default('pi'))
    .option('--no-docker', 'leave dockerd stopped on the nodes (provision then starts it)')
    .option(
      '--without-docker <nodes>',
      'node numbers (e.g. 2 or 2,3) that start with Docker Engine not installed: docker.io, containerd, runc and tini are removed from those nodes\' own overlays of /usr, /etc and /var (this machine keeps its packages), so provision installs Docker there with apt',
      nodeNumbers,
    )
    .option(
      '--apt-source <line>',
      'the only apt source of the --without-docker nodes (required with it), e.g. "deb [trusted=yes] http://10.99.0.1:8080/ ./" (lab nodes have no route out: serve a folder of .deb files indexed by dpkg-scanpackages on the bridge address)',
    )
    .option(
      '--pi <nodes>',
      'node numbers (e.g. 1 or 1,2) that look like Raspberry Pis, in their own mount namespace only: a device tree naming --pi-model, /boot/firmware/cmdline.txt, a kernel that enables the memory cgroup when cmdline.txt has cgroup_enable=memory, and an emulated reboot (`reboot`, `systemctl reboot`: every process of the node stops, SSH is refused for a few seconds, then sshd and dockerd start again)',
      nodeNumbers,
    )
    .option('--pi-model <model>', 'device-tree model of the --pi nodes', DEFAULT_PI_MODEL)
    .option(
      '--without-memory-cgroup <nodes>',
      'node numbers whose kernel starts without the memory cgroup (as a Pi kernel does until cmdline.txt enables it); with --pi, `pifaas provision --fix-cgroups` fixes it and reboots the node',
      nodeNumbers,
    )
    .option('--json', 'print the lab as JSON');
  up.action(async (opts: UpFlags) => {
    let lab: Lab | undefined;
    await new Listr(
      [
        {
          title: `lab ${opts.name}: ${opts.nodes} node(s) on ${opts.subnet}`,
          task: async (_c, task) => {
            lab = await labUp({ ...opts, aptSources: opts.aptSource, onProgress: (m) => (task.output = m) });
            task.title = `lab ${opts.name} is up`;
          },
          rendererOptions: { persistentOutput: false },
        },
      ],
      { renderer: opts.json ? 'silent' : process.stdout.isTTY ? 'default' : 'simple', exitOnError: true, fallbackRenderer: 'simple' } as never,
    ).run();
    if (lab) {
      // The sudo password stays in the 0600 inventory file; it is never printed.
      const { piPassword: _secret, ...shown } = lab;
      printResult(opts, shown, (l) => humanLab({ ...l, piPassword: '' }));
    }
  });
  withExamples(
    up,
    'sudo pifaas lab up --nodes 3',
    'sudo pifaas lab up --name lab2 --subnet 10.98.0.0/24 --nodes 6 --json',
    'sudo pifaas lab up --nodes 2 --without-docker 2 --apt-source "deb [trusted=yes] http://10.99.0.1:8080/ ./"',
    'sudo pifaas lab up --nodes 2 --pi 2 --without-memory-cgroup 2   # node 2: a Pi 4 that needs --fix-cgroups',
  );

  const down = new Command('down')
    .description('remove a lab: its daemons and containers, namespaces, bridge, iptables rules and files (also after a crash)')
    .option('--name <name>', 'lab name', DEFAULT_LAB_NAME)
    .option('--json', 'print what was removed as JSON');
  down.action(async (opts: { name: string; json?: boolean }) => {
    const r = await labDown(opts.name);
    printResult(opts, r, (d) => (d.found ? `lab ${d.name} removed (${d.processes} process(es) stopped)` : `no lab named ${d.name}: nothing to remove`));
  });
  withExamples(down, 'sudo pifaas lab down', 'sudo pifaas lab down --name lab2');

  const ls = new Command('ls').description('list the labs on this machine and whether their nodes run (root)').option('--json', 'print as JSON');
  ls.action(async (opts: { json?: boolean }) => {
    const labs = await listLabs();
    printResult(opts, labs, (list) =>
      list.length
        ? formatTable(
            ['LAB', 'SUBNET', 'NODES', 'RUNNING', 'INVENTORY'],
            list.map((l) => [l.name, l.subnet, String(l.nodes.length), String(l.nodes.filter((n) => n.running).length), l.inventoryFile]),
          )
        : 'no labs (make one with: sudo pifaas lab up)',
    );
  });
  withExamples(ls, 'sudo pifaas lab ls', 'sudo pifaas lab ls --json');

  cmd.addCommand(up);
  cmd.addCommand(down);
  cmd.addCommand(ls);
  return withExamples(cmd, 'sudo pifaas lab up --nodes 3', 'sudo pifaas lab ls', 'sudo pifaas lab down');
}
