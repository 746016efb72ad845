// Why: `pifaas rm NAME` removes a function through the gateway (faas-cli remove); removing one that
// is already gone is reported, not fatal, so scripts can run it again.
import { Command } from 'commander';
import { withExamples } from '../cli/command-help.js';
import { printResult } from '../cli/output.js';
import { FunctionNotFoundError } from '../openfaas/gateway-client.js';
import { resolveTarget } from '../openfaas/function-deploy.js';
import { gatewayFromFlags, optionalStackFile } from '../openfaas/gateway-target.js';

interface RmFlags {
  yaml?: string;
  gateway?: string;
  namespace?: string;
  inventory?: string;
  json?: boolean;
}

export function rmCommand(): Command {
  const cmd = new Command('rm')
    .description('remove functions from the OpenFaaS gateway')
    .argument('<names...>', 'functions to remove')
    .option('-g, --gateway <url>', 'gateway URL (default: stack.yml provider.gateway, $OPENFAAS_URL, the inventory\'s manager, http://127.0.0.1:8080)')
    .option('-f, --yaml <file>', 'stack file whose provider.gateway to use (default ./stack.yml when present)')
    .option('-n, --namespace <namespace>', 'function namespace on OpenFaaS for Kubernetes (default openfaas-fn)')
    .option('-i, --inventory <file>', 'use the gateway of this inventory\'s swarm manager')
    .option('--json', 'print what was removed as JSON')
    .action(async (names: string[], flags: RmFlags) => {
      const client = await gatewayFromFlags(flags, await optionalStackFile(flags.yaml));
      const target = await resolveTarget(client, { flag: flags.namespace });
      const removed: { name: string; removed: boolean }[] = [];
      for (const name of names) {
        try {
          await client.remove(name, target.namespace);
          removed.push({ name, removed: true });
        } catch (e) {
          if (!(e instanceof FunctionNotFoundError)) throw e;
          removed.push({ name, removed: false });
        }
      }
      printResult(flags, { gateway: client.url, functions: removed }, (d) =>
        d.functions.map((f) => (f.removed ? `removed ${f.name}` : `${f.name} was not deployed (nothing to remove)`)).join('\n'),
      );
    });
  return withExamples(cmd, 'pifaas rm faas-digits', 'pifaas rm faas-resnet faas-digits --gateway http://192.168.1.11:8080');
}
