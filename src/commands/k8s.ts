// Why: `pifaas k8s manifests NAME` prints a Deployment + Service for a stack.yml function, for
// Kubernetes clusters without OpenFaaS (pipe it to `kubectl apply -f -`). The objects are built in
// src/k8s/function-manifests.ts.
import { Command, Option } from 'commander';
import { withExamples } from '../cli/command-help.js';
import { printJson } from '../cli/output.js';
import { functionManifests, manifestsYaml, type ServiceType } from '../k8s/function-manifests.js';
import { DEFAULT_STACK_FILE } from '../openfaas/gateway-target.js';
import { loadStackFile, stackFunction } from '../openfaas/stack-file.js';
import { UserError } from '../user-error.js';

interface ManifestFlags {
  yaml: string;
  namespace?: string;
  replicas?: string;
  serviceType?: ServiceType;
  image?: string;
  json?: boolean;
}

export function k8sCommand(): Command {
  const cmd = new Command('k8s').description('run the functions on Kubernetes without OpenFaaS');
  const manifests = new Command('manifests')
    .description('print a Deployment and a Service for a stack.yml function (health probes on /_/health, resources from stack.yml)')
    .argument('<name>', 'function of the stack file')
    .option('-f, --yaml <file>', 'stack file in faas-cli format', DEFAULT_STACK_FILE)
    .option('-n, --namespace <namespace>', 'Kubernetes namespace of the objects', 'default')
    .option('--replicas <count>', 'replicas (default: the com.openfaas.scale.min label, else 1)')
    .addOption(new Option('--service-type <type>', 'Service type').choices(['ClusterIP', 'NodePort', 'LoadBalancer']).default('ClusterIP'))
    .option('--image <image>', 'another image than stack.yml\'s (e.g. from the cluster\'s registry)')
    .option('--json', 'print a v1 List as JSON instead of YAML')
    .action(async (name: string, flags: ManifestFlags) => {
      const replicas = flags.replicas === undefined ? undefined : Number(flags.replicas);
      if (replicas !== undefined && (!Number.isInteger(replicas) || replicas < 0)) throw new UserError(`--replicas ${flags.replicas} is not a number of replicas`, 'e.g. --replicas 2');
      const stack = await loadStackFile(flags.yaml);
      const m = functionManifests(stackFunction(stack, name), { namespace: flags.namespace, replicas, serviceType: flags.serviceType, image: flags.image });
      if (flags.json) printJson({ apiVersion: 'v1', kind: 'List', items: [m.deployment, m.service] });
      else process.stdout.write(await manifestsYaml(m));
    });
  withExamples(
    manifests,
    'pifaas k8s manifests faas-resnet | kubectl apply -f -',
    'pifaas k8s manifests faas-digits --namespace ml --service-type NodePort --replicas 2',
  );
  cmd.addCommand(manifests);
  return withExamples(cmd, 'pifaas k8s manifests faas-resnet | kubectl apply -f -');
}
