// Why: `pifaas openfaas install` puts the pinned OpenFaaS Swarm stack on a swarm (through the
// inventory's manager, over SSH) and saves the gateway's credentials where faas-cli reads them;
// `pifaas openfaas password` prints the password, and only when asked. The work is in src/openfaas/.
import { Command, Option } from 'commander';
import { Listr } from 'listr2';
import { withExamples } from '../cli/command-help.js';
import { formatTable, printResult } from '../cli/output.js';
import { taskListOptions } from '../cli/task-list.js';
import { lookupCredentials, openfaasConfigFile } from '../openfaas/credentials.js';
import { gatewayFromFlags } from '../openfaas/gateway-target.js';
import { openManagerDocker } from '../openfaas/manager-docker.js';
import { installOpenFaaSOnSwarm, type OpenFaaSInstallOutcome } from '../openfaas/openfaas-install.js';
import type { PublishMode } from '../openfaas/swarm-stack.js';
import { UserError } from '../user-error.js';

interface InstallFlags {
  dockerHost?: string;
  publish?: PublishMode;
  port?: string;
  gatewayHost?: string;
  resetPassword?: boolean;
  acceptNewHostKeys?: boolean;
  sshConfig?: string;
  wait: boolean;
  waitTimeout: string;
  json?: boolean;
}

function summarize(o: OpenFaaSInstallOutcome): string {
  const count = (a: string) => o.changes.filter((c) => c.action === a).length;
  const lines = [
    `OpenFaaS stack "func" on a ${o.architecture} manager (${o.cpuFamily} images), gateway published in ${o.publish} mode`,
    formatTable(
      ['SERVICE', 'IMAGE', 'CHANGE'],
      o.services.map((s) => [s.name, s.image, o.changes.find((c) => c.kind === 'service' && c.name === s.name)?.action ?? '-']),
    ),
    `${count('created')} created, ${count('updated')} updated, ${count('unchanged')} unchanged, ${count('removed')} removed`,
    `gateway: ${o.gatewayUrl}${o.gatewayVersion ? ` (gateway ${o.gatewayVersion}, ${o.provider})` : ''}`,
    `credentials for user ${o.username}: ${o.credentialsFile} (faas-cli reads them too); show the password with \`pifaas openfaas password --gateway ${o.gatewayUrl}\``,
  ];
  if (o.faasSwarmDockerApiVersion !== '1.30') lines.push(`note: faas-swarm speaks Docker API ${o.faasSwarmDockerApiVersion} (this daemon refuses 1.30)`);
  return lines.join('\n');
}

export function openfaasCommand(): Command {
  const cmd = new Command('openfaas').description('install OpenFaaS on the swarm and manage its credentials');

  const install = new Command('install')
    .description('create or update the pinned OpenFaaS Swarm stack through the manager\'s Docker API (safe to re-run)')
    .argument('[inventory]', 'inventory.yaml: OpenFaaS goes on the swarm of its first manager (over SSH)')
    .option('--docker-host <url>', 'instead of an inventory: the manager\'s own Docker socket (unix:///var/run/docker.sock), when run on the manager')
    .addOption(new Option('--publish <mode>', 'how the gateway port is published (default: pifaas_openfaas_publish, else ingress)').choices(['ingress', 'host']))
    .option('--port <port>', 'gateway port (default: pifaas_openfaas_gateway_port, else 8080)')
    .option('--gateway-host <host>', 'address users reach the gateway at (default: the manager\'s inventory address, after the SSH config)')
    .option('--reset-password', 'give the swarm a new gateway password (re-creates the services that read it)')
    .option('--accept-new-host-keys', 'record SSH host keys of hosts seen for the first time')
    .option('--ssh-config <file>', 'OpenSSH client config to read (default ~/.ssh/config)')
    .option('--no-wait', 'do not wait for the gateway to answer')
    .option('--wait-timeout <seconds>', 'how long to wait for the gateway (images are pulled on first install)', '600')
    .option('--json', 'print the result as JSON')
    .action(async (inventory: string | undefined, flags: InstallFlags) => {
      if (!inventory && !flags.dockerHost) {
        throw new UserError('pifaas openfaas install needs the swarm: an inventory or --docker-host', 'e.g. pifaas openfaas install inventory.yaml');
      }
      const port = flags.port === undefined ? undefined : Number(flags.port);
      if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new UserError(`--port ${flags.port} is not a port number`, 'e.g. --port 8080');
      const waitS = Number(flags.waitTimeout);
      if (!Number.isFinite(waitS) || waitS <= 0) throw new UserError(`--wait-timeout ${flags.waitTimeout} is not a number of seconds`);
      let outcome: OpenFaaSInstallOutcome | undefined;
      const list = new Listr(
        [
          {
            title: inventory ? `connect to the manager of ${inventory}` : `connect to ${flags.dockerHost}`,
            task: async (ctx: { manager?: Awaited<ReturnType<typeof openManagerDocker>> }, task: { title: string }) => {
              ctx.manager = await openManagerDocker({ inventory, dockerHost: flags.dockerHost, acceptNewHostKeys: flags.acceptNewHostKeys, sshConfigFile: flags.sshConfig });
              task.title = `connected to ${ctx.manager!.description}`;
            },
          },
          {
            title: 'install the OpenFaaS stack',
            task: async (ctx: { manager?: Awaited<ReturnType<typeof openManagerDocker>> }, task: { output: string; title: string }) => {
              const m = ctx.manager!;
              try {
                outcome = await installOpenFaaSOnSwarm({
                  docker: m.docker,
                  gatewayHost: flags.gatewayHost ?? m.gatewayHost,
                  publish: flags.publish ?? m.settings.publish,
                  gatewayPort: port ?? m.settings.gatewayPort,
                  resetPassword: flags.resetPassword,
                  waitMs: flags.wait ? waitS * 1000 : 0,
                  onStep: (s) => (task.output = s),
                });
              } finally {
                await m.close();
              }
              task.title = `OpenFaaS at ${outcome.gatewayUrl}`;
            },
          },
        ],
        taskListOptions(flags.json),
      );
      await list.run({});
      printResult(flags, outcome!, summarize);
    });
  withExamples(
    install,
    'pifaas openfaas install inventory.yaml',
    'pifaas openfaas install inventory.yaml --publish host     # kernels without IPVS (the lab)',
    'sudo pifaas openfaas install --docker-host unix:///var/run/docker.sock   # on the manager itself',
  );

  const password = new Command('password')
    .description('print the gateway\'s basic-auth password saved on this machine (the only command that shows it)')
    .option('-g, --gateway <url>', 'gateway URL (default: $OPENFAAS_URL, the inventory\'s manager, http://127.0.0.1:8080)')
    .option('-i, --inventory <file>', 'the gateway of this inventory\'s swarm manager')
    .option('--json', 'print {gateway, username, password} as JSON')
    .action(async (flags: { gateway?: string; inventory?: string; json?: boolean }) => {
      const client = await gatewayFromFlags(flags);
      const creds = await lookupCredentials(client.url);
      if (!creds) {
        throw new UserError(
          `no credentials are saved for ${client.url} in ${openfaasConfigFile()}`,
          'install OpenFaaS from this machine (`pifaas openfaas install inventory.yaml`) or copy config.yml from the machine that did; check --gateway / OPENFAAS_URL',
        );
      }
      printResult(flags, { gateway: client.url, username: creds.username, password: creds.password }, (d) => d.password);
    });
  withExamples(
    password,
    'pifaas openfaas password -i inventory.yaml',
    'pifaas openfaas password --gateway http://192.168.1.11:8080 | faas-cli login --gateway http://192.168.1.11:8080 --password-stdin',
  );

  cmd.addCommand(install);
  cmd.addCommand(password);
  return withExamples(cmd, 'pifaas openfaas install inventory.yaml', 'pifaas openfaas password -i inventory.yaml');
}
