// Why: `pifaas logs NAME` shows what a function printed (model loading, errors), read from the
// gateway's /system/logs stream, on a swarm and on Kubernetes alike; --follow keeps streaming.
import { Command } from 'commander';
import { withExamples } from '../cli/command-help.js';
import { resolveTarget } from '../openfaas/function-deploy.js';
import { gatewayFromFlags, optionalStackFile } from '../openfaas/gateway-target.js';
import { UserError } from '../user-error.js';

interface LogsFlags {
  yaml?: string;
  gateway?: string;
  namespace?: string;
  inventory?: string;
  tail?: string;
  since?: string;
  follow?: boolean;
  json?: boolean;
}

/** --since: an RFC 3339 time, or a duration back from now (30s, 10m, 2h, 1d). */
export function parseSince(text: string, now = Date.now()): Date {
  const m = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  if (m) return new Date(now - Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2] as 's']);
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UserError(`--since ${text} is neither a duration nor a time`, 'write it like 10m, 2h or 2024-05-01T10:00:00Z');
  return new Date(t);
}

export function logsCommand(): Command {
  const cmd = new Command('logs')
    .description('print a function\'s log lines (from the gateway\'s log stream)')
    .argument('<name>', 'function whose logs to print')
    .option('-g, --gateway <url>', 'gateway URL (default: stack.yml provider.gateway, $OPENFAAS_URL, the inventory\'s manager, http://127.0.0.1:8080)')
    .option('-f, --yaml <file>', 'stack file whose provider.gateway to use (default ./stack.yml when present)')
    .option('-n, --namespace <namespace>', 'function namespace on OpenFaaS for Kubernetes (default openfaas-fn)')
    .option('-i, --inventory <file>', 'use the gateway of this inventory\'s swarm manager')
    .option('--tail <lines>', 'only the last N lines')
    .option('--since <when>', 'only lines after a time (RFC 3339) or within a duration (10m, 2h)')
    .option('--follow', 'keep streaming new lines until interrupted')
    .option('--json', 'print one JSON object per line (NDJSON)')
    .action(async (name: string, flags: LogsFlags) => {
      const tail = flags.tail === undefined ? undefined : Number(flags.tail);
      if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new UserError(`--tail ${flags.tail} is not a number of lines`, 'e.g. --tail 50');
      const since = flags.since ? parseSince(flags.since) : undefined;
      const client = await gatewayFromFlags(flags, await optionalStackFile(flags.yaml));
      const target = await resolveTarget(client, { flag: flags.namespace });
      const stop = new AbortController();
      const onSigint = () => stop.abort();
      // A reader that has seen enough (`| head`, `| grep -m 1`) closes the pipe: that ends the stream
      // quietly, as it ends `docker logs`, instead of Node's unhandled EPIPE.
      let outputError: Error | undefined;
      const onOutputError = (e: NodeJS.ErrnoException) => {
        if (e.code !== 'EPIPE') outputError = e;
        stop.abort();
      };
      process.once('SIGINT', onSigint);
      process.stdout.on('error', onOutputError);
      try {
        for await (const line of client.logs({ name, namespace: target.namespace, tail, since, follow: flags.follow, signal: stop.signal })) {
          if (stop.signal.aborted) break;
          process.stdout.write(flags.json ? `${JSON.stringify(line)}\n` : `${line.timestamp} ${line.instance} ${line.text.replace(/\n$/, '')}\n`);
        }
        // The last lines' fate (written, or refused by a closed pipe) is known once they are flushed.
        await new Promise<void>((resolve) => process.stdout.write('', () => setImmediate(resolve)));
      } finally {
        process.off('SIGINT', onSigint);
        process.stdout.off('error', onOutputError);
      }
      if (outputError) throw outputError;
    });
  return withExamples(cmd, 'pifaas logs faas-resnet --tail 20', 'pifaas logs faas-digits --follow --since 10m', 'pifaas logs faas-resnet --json | jq -r .text');
}
