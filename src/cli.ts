// Why: the single entry point of the `pifaas` command line. Each command lives in its own file under
// src/commands/ (parse flags, call a domain module, render); this file only wires them together and
// turns thrown errors into exit codes.
import type { EventEmitter } from 'node:events';
import { Command, CommanderError } from 'commander';
import { reportError } from './cli/output.js';
import { withExamples } from './cli/command-help.js';

/**
 * Every command, in the order a user meets them. Each module exports a factory returning a Command;
 * modules load on demand, so `pifaas serve` never loads the SD-card or Kubernetes libraries (start-up
 * time, and no foreign process-wide handlers).
 */
const COMMANDS: ReadonlyArray<readonly [string, () => Promise<() => Command>]> = [
  ['serve', async () => (await import('./commands/serve.js')).serveCommand],
  ['models', async () => (await import('./commands/models.js')).modelsCommand],
  ['inventory', async () => (await import('./commands/inventory.js')).inventoryCommand],
  ['burn', async () => (await import('./commands/burn.js')).burnCommand],
  ['provision', async () => (await import('./commands/provision.js')).provisionCommand],
  ['status', async () => (await import('./commands/status.js')).statusCommand],
  ['build', async () => (await import('./commands/build.js')).buildCommand],
  ['push', async () => (await import('./commands/push.js')).pushCommand],
  ['openfaas', async () => (await import('./commands/openfaas.js')).openfaasCommand],
  ['deploy', async () => (await import('./commands/deploy.js')).deployCommand],
  ['ls', async () => (await import('./commands/ls.js')).lsCommand],
  ['invoke', async () => (await import('./commands/invoke.js')).invokeCommand],
  ['logs', async () => (await import('./commands/logs.js')).logsCommand],
  ['rm', async () => (await import('./commands/rm.js')).rmCommand],
  ['k8s', async () => (await import('./commands/k8s.js')).k8sCommand],
  ['lab', async () => (await import('./commands/lab.js')).labCommand],
];

/**
 * Loads a command module, then removes any process-wide error handlers its libraries installed:
 * ext2fs (Emscripten, loaded by etcher-sdk) rethrows every uncaught error from its own one-line
 * source, so a plain EPIPE would print hundreds of kilobytes of WebAssembly glue. Our errors are
 * reported by main(); anything else gets Node's default report.
 */
async function withoutProcessErrorHandlers<T>(load: () => Promise<T>): Promise<T> {
  const emitter: EventEmitter = process;
  const events = ['uncaughtException', 'unhandledRejection'];
  const before = new Map(events.map((e) => [e, new Set(emitter.listeners(e))]));
  const loaded = await load();
  for (const e of events) {
    for (const l of emitter.listeners(e)) if (!before.get(e)!.has(l)) emitter.removeListener(e, l as (...args: unknown[]) => void);
  }
  return loaded;
}

const VERSION = '0.1.0';

/**
 * The program for one run. When argv names a command only that command is loaded; anything else
 * (no command, `help`, `--help`, a typo) loads them all so help and suggestions list every command.
 */
export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command('pifaas')
    .description(
      'Raspberry Pis (or any Linux box) as a serverless image-classification cluster:\n' +
        'burn SD cards, provision Docker Swarm + OpenFaaS over SSH, build and deploy ONNX functions.',
    )
    .version(VERSION)
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ sortSubcommands: false });
  withExamples(
    program,
    'pifaas serve faas-resnet            # the classifier on http://localhost:8080',
    'curl --data-binary @tiger.jpg http://localhost:8080/function/faas-resnet',
  );
  const named = argv.slice(2).find((a) => !a.startsWith('-'));
  const wanted = COMMANDS.filter(([name]) => name === named);
  const versionOnly = named === undefined && (argv.includes('--version') || argv.includes('-V'));
  if (!versionOnly) {
    for (const [, load] of wanted.length ? wanted : COMMANDS) program.addCommand((await withoutProcessErrorHandlers(load))());
  }
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram(argv);
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed help, version or the usage error.
      process.exitCode = err.exitCode;
      return;
    }
    process.exitCode = reportError(err, argv.includes('--json'));
  }
}
