// Why: `pifaas invoke NAME < photo.jpg` sends stdin to a function through the gateway and writes
// its answer to stdout, byte for byte (faas-cli invoke), so it pipes into jq or a file. A non-2xx
// answer is written to stderr and the exit code is 1.
import { Command } from 'commander';
import { withExamples } from '../cli/command-help.js';
import { resolveTarget } from '../openfaas/function-deploy.js';
import { gatewayFromFlags, optionalStackFile } from '../openfaas/gateway-target.js';
import { UserError } from '../user-error.js';

interface InvokeFlags {
  yaml?: string;
  gateway?: string;
  namespace?: string;
  inventory?: string;
  contentType: string;
  method?: string;
  path?: string;
}

/**
 * The most `pifaas invoke` reads from standard input: far above what a pifaas function accepts
 * (10 MiB by default, PIFAAS_MAX_BODY_BYTES), far below what would exhaust this machine's memory
 * (the body is held whole, as faas-cli does, to send it with its length).
 */
export const MAX_INVOKE_BODY_BYTES = 64 * 1024 * 1024;

async function readStdin(name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    size += (c as Buffer).length;
    if (size > MAX_INVOKE_BODY_BYTES) {
      throw new UserError(
        `standard input is larger than ${MAX_INVOKE_BODY_BYTES / 1024 / 1024} MiB, the most pifaas invoke sends`,
        `pipe in a smaller file (pifaas functions take up to 10 MiB, PIFAAS_MAX_BODY_BYTES), or send a large body straight to the gateway: curl --data-binary @FILE GATEWAY/function/${name}`,
      );
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export function invokeCommand(): Command {
  const cmd = new Command('invoke')
    .description('call a function through the gateway with stdin as the request body; its answer goes to stdout')
    .argument('<name>', 'function to call')
    .option('-g, --gateway <url>', 'gateway URL (default: stack.yml provider.gateway, $OPENFAAS_URL, the inventory\'s manager, http://127.0.0.1:8080)')
    .option('-f, --yaml <file>', 'stack file whose provider.gateway to use (default ./stack.yml when present)')
    .option('-n, --namespace <namespace>', 'function namespace on OpenFaaS for Kubernetes (default openfaas-fn)')
    .option('-i, --inventory <file>', 'use the gateway of this inventory\'s swarm manager')
    .option('--content-type <type>', 'content type of the body', 'application/octet-stream')
    .option('-m, --method <method>', 'HTTP method (POST with a body)', 'POST')
    .option('--path <path>', 'extra path after the function name, e.g. /_/health')
    .action(async (name: string, flags: InvokeFlags) => {
      const method = (flags.method ?? 'POST').toUpperCase();
      if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) throw new UserError(`--method ${flags.method} is not one of GET, POST, PUT, PATCH, DELETE`);
      if (flags.path && !flags.path.startsWith('/')) throw new UserError(`--path ${flags.path} must start with /`, 'e.g. --path /_/health');
      if (method !== 'GET' && process.stdin.isTTY) {
        throw new UserError('pifaas invoke sends its standard input to the function, and none is piped in', `pipe a file in: pifaas invoke ${name} < tiger.jpg (or use -m GET)`);
      }
      const body = method === 'GET' ? undefined : await readStdin(name);
      const client = await gatewayFromFlags(flags, await optionalStackFile(flags.yaml));
      const target = await resolveTarget(client, { flag: flags.namespace });
      const res = await client.invoke(name, body, {
        namespace: target.namespace,
        contentType: flags.contentType,
        method: method as 'POST',
        path: flags.path,
      });
      if (res.status >= 200 && res.status < 300) {
        process.stdout.write(res.body);
        return;
      }
      process.stderr.write(`error: ${name} answered ${res.status}${res.body.length ? `: ${res.body.toString('utf8').trim()}` : ''}\n`);
      process.exitCode = 1;
    });
  return withExamples(
    cmd,
    'pifaas invoke faas-resnet < tiger.jpg | jq ".predictions[0]"',
    'base64 digit-5.jpg | pifaas invoke faas-digits --content-type text/plain',
    'pifaas invoke faas-resnet -m GET --path /_/health',
  );
}
