// Why: `pifaas deploy NAME` is the step after `pifaas build`/`push`: it reads stack.yml, creates or
// updates the function through the OpenFaaS gateway, waits until a replica is available (explaining
// a task that cannot start), then calls the function once and shows its answer, so a user knows it
// works before pointing anything at it. The work is src/openfaas/function-deploy.ts.
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { Listr } from 'listr2';
import { withExamples } from '../cli/command-help.js';
import { formatTable, printResult } from '../cli/output.js';
import type { InvokeResult } from '../openfaas/gateway-client.js';
import { deployFunction, firstCall, type DeployOutcome } from '../openfaas/function-deploy.js';
import { DEFAULT_STACK_FILE, gatewayFromFlags } from '../openfaas/gateway-target.js';
import { openManagerDocker } from '../openfaas/manager-docker.js';
import { loadStackFile, stackFunction } from '../openfaas/stack-file.js';
import { dockerFunctionTasks } from '../openfaas/swarm-tasks.js';
import { UserError } from '../user-error.js';
import { taskListOptions } from '../cli/task-list.js';

interface DeployFlags {
  yaml: string;
  gateway?: string;
  namespace?: string;
  inventory?: string;
  dockerHost?: string;
  acceptNewHostKeys?: boolean;
  sshConfig?: string;
  timeout: string;
  data?: string;
  contentType?: string;
  call: boolean;
  json?: boolean;
}

/** The first call's answer, as JSON when it is JSON, as text when it is text. */
export function describeAnswer(res: InvokeResult): { status: number; contentType: string | null; body: unknown } {
  const ct = res.contentType ?? '';
  const text = res.body.toString('utf8');
  if (/json/i.test(ct)) {
    try {
      return { status: res.status, contentType: ct, body: JSON.parse(text) };
    } catch {
      // fall through: shown as text
    }
  }
  const printable = !res.body.some((b) => b < 9 || (b > 13 && b < 32));
  return { status: res.status, contentType: res.contentType, body: printable ? text : `<${res.body.length} bytes>` };
}

export function deployCommand(): Command {
  const cmd = new Command('deploy')
    .description('deploy functions of stack.yml through the OpenFaaS gateway, wait until a replica is ready, then call each once')
    .argument('[names...]', 'functions to deploy (default: every function in the stack file)')
    .option('-f, --yaml <file>', 'stack file in faas-cli format', DEFAULT_STACK_FILE)
    .option('-g, --gateway <url>', 'gateway URL (default: stack.yml provider.gateway, $OPENFAAS_URL, the inventory\'s manager, http://127.0.0.1:8080)')
    .option('-n, --namespace <namespace>', 'function namespace on OpenFaaS for Kubernetes (default: stack.yml, then openfaas-fn)')
    .option('-i, --inventory <file>', 'the swarm\'s inventory: its manager\'s gateway, and the swarm\'s task errors when a function does not start')
    .option('--docker-host <url>', 'a manager\'s Docker socket (unix:///var/run/docker.sock) for task errors, when run on the manager')
    .option('--accept-new-host-keys', 'record SSH host keys of hosts seen for the first time')
    .option('--ssh-config <file>', 'OpenSSH client config to read (default ~/.ssh/config)')
    .option('--timeout <seconds>', 'how long to wait for an available replica', '180')
    .option('--data <file>', 'call the function once with this file (default: GET /function/NAME/_/health)')
    .option('--content-type <type>', 'content type of --data', 'application/octet-stream')
    .option('--no-call', 'do not call the function after deploying it')
    .option('--json', 'print the result as JSON')
    .action(async (names: string[], flags: DeployFlags) => {
      const timeoutS = Number(flags.timeout);
      if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UserError(`--timeout ${flags.timeout} is not a number of seconds`, 'e.g. --timeout 300');
      const stack = await loadStackFile(flags.yaml);
      const fns = (names.length ? names : Object.keys(stack.functions)).map((n) => stackFunction(stack, n));
      const data = flags.data ? await readFile(flags.data).catch((e: Error) => {
        throw new UserError(`cannot read --data ${flags.data}: ${e.message}`, 'give the path of a file to send, e.g. --data tiger.jpg');
      }) : undefined;
      const client = await gatewayFromFlags(flags, stack);
      const manager = await openManagerDocker({ inventory: flags.inventory, dockerHost: flags.dockerHost ?? process.env.DOCKER_HOST, acceptNewHostKeys: flags.acceptNewHostKeys, sshConfigFile: flags.sshConfig }).catch((e: unknown) => {
        // Task errors are a bonus: without the manager pifaas still deploys through the gateway.
        if (flags.inventory || flags.dockerHost) throw e;
        return undefined;
      });
      const results: (DeployOutcome & { answer?: ReturnType<typeof describeAnswer> })[] = [];
      try {
        const list = new Listr(
          fns.map((fn) => ({
            title: `deploy ${fn.name}`,
            task: async (_ctx: unknown, task: { output: string; title: string }) => {
              const outcome = await deployFunction(client, fn, {
                namespace: flags.namespace,
                timeoutMs: timeoutS * 1000,
                tasks: manager ? dockerFunctionTasks(manager.docker) : undefined,
                onStep: (m) => (task.output = m),
              });
              const r: (typeof results)[number] = { ...outcome };
              if (flags.call) {
                task.output = `calling ${outcome.url}`;
                r.answer = describeAnswer(await firstCall(client, fn.name, data, { namespace: outcome.namespace, contentType: flags.contentType }));
              }
              results.push(r);
              task.title = `${fn.name} ${outcome.action}: ${outcome.status.availableReplicas}/${outcome.status.replicas} ready at ${outcome.url}`;
            },
          })),
          taskListOptions(flags.json),
        );
        await list.run();
      } finally {
        await manager?.close();
      }
      printResult(flags, { gateway: client.url, functions: results }, (d) => {
        const table = formatTable(
          ['FUNCTION', 'ACTION', 'IMAGE', 'READY', 'URL'],
          d.functions.map((f) => [f.name, f.action, f.image, `${f.status.availableReplicas}/${f.status.replicas}`, f.url]),
        );
        const answers = d.functions
          .filter((f) => f.answer)
          .map((f) => `${f.name} answered ${f.answer!.status}: ${typeof f.answer!.body === 'string' ? f.answer!.body.trim() : JSON.stringify(f.answer!.body)}`);
        return [table, ...answers].join('\n');
      });
      if (results.some((r) => r.answer && r.answer.status >= 400)) process.exitCode = 1;
    });
  return withExamples(
    cmd,
    'pifaas deploy faas-resnet -i inventory.yaml',
    'OPENFAAS_URL=http://192.168.1.11:8080 pifaas deploy faas-resnet --data tiger.jpg',
    'pifaas deploy faas-digits --gateway http://aws-node:31112 --namespace openfaas-fn',
    'pifaas deploy --json | jq ".functions[].url"',
  );
}
