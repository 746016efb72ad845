// Why: `pifaas ls` answers "what runs on my cluster": the functions the gateway knows, their images,
// invocation counts and ready replicas (faas-cli list's table), or JSON for scripts.
import { Command } from 'commander';
import { withExamples } from '../cli/command-help.js';
import { formatTable, printResult } from '../cli/output.js';
import { resolveTarget } from '../openfaas/function-deploy.js';
import { gatewayFromFlags, optionalStackFile } from '../openfaas/gateway-target.js';

interface LsFlags {
  yaml?: string;
  gateway?: string;
  namespace?: string;
  inventory?: string;
  json?: boolean;
}

export function lsCommand(): Command {
  const cmd = new Command('ls')
    .description('list the functions deployed on the OpenFaaS gateway')
    .option('-g, --gateway <url>', 'gateway URL (default: stack.yml provider.gateway, $OPENFAAS_URL, the inventory\'s manager, http://127.0.0.1:8080)')
    .option('-f, --yaml <file>', 'stack file whose provider.gateway to use (default ./stack.yml when present)')
    .option('-n, --namespace <namespace>', 'function namespace on OpenFaaS for Kubernetes (default openfaas-fn)')
    .option('-i, --inventory <file>', 'use the gateway of this inventory\'s swarm manager')
    .option('--json', 'print the functions as JSON')
    .action(async (flags: LsFlags) => {
      const client = await gatewayFromFlags(flags, await optionalStackFile(flags.yaml));
      const target = await resolveTarget(client, { flag: flags.namespace });
      const fns = await client.listFunctions(target.namespace);
      const functions = fns
        .map((f) => ({
          name: f.name,
          image: f.image,
          namespace: f.namespace ?? target.namespace ?? null,
          invocations: f.invocationCount,
          replicas: f.replicas,
          availableReplicas: f.availableReplicas,
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
      printResult(flags, { gateway: client.url, provider: target.info.provider?.provider ?? null, namespace: target.namespace ?? null, functions }, (d) =>
        d.functions.length
          ? formatTable(
              ['FUNCTION', 'INVOCATIONS', 'READY', 'IMAGE'],
              d.functions.map((f) => [f.name, String(f.invocations), `${f.availableReplicas}/${f.replicas}`, f.image]),
            )
          : `no functions on ${d.gateway}${d.namespace ? ` in namespace ${d.namespace}` : ''} (deploy one with \`pifaas deploy faas-resnet\`)`,
      );
    });
  return withExamples(cmd, 'pifaas ls', 'OPENFAAS_URL=http://192.168.1.11:8080 pifaas ls --json | jq ".functions[].name"', 'pifaas ls -i inventory.yaml');
}
