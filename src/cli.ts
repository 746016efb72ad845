// Why: the single entry point of the `pifaas` command line. Each command lives in its own file under
// src/commands/ (parse flags, call a domain module, render); this file only wires them together and
// turns thrown errors into exit codes.
import { Command, CommanderError } from 'commander';
import { reportError } from './cli/output.js';
import { withExamples } from './cli/command-help.js';
import { labCommand } from './commands/lab.js';
import { provisionCommand } from './commands/provision.js';
import { statusCommand } from './commands/status.js';
import { inventoryCommand } from './commands/inventory.js';
import { modelsCommand } from './commands/models.js';
import { serveCommand } from './commands/serve.js';
import { burnCommand } from './commands/burn.js';
import { deployCommand } from './commands/deploy.js';
import { lsCommand } from './commands/ls.js';
import { rmCommand } from './commands/rm.js';
import { invokeCommand } from './commands/invoke.js';
import { logsCommand } from './commands/logs.js';
import { openfaasCommand } from './commands/openfaas.js';
import { k8sCommand } from './commands/k8s.js';
import { buildCommand } from './commands/build.js';
import { pushCommand } from './commands/push.js';

const VERSION = '0.1.0';

export function buildProgram(): Command {
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
  // Commands, in the order a user meets them. Each module exports a factory returning a Command.
  program.addCommand(serveCommand());
  program.addCommand(modelsCommand());
  program.addCommand(inventoryCommand());
  program.addCommand(burnCommand());
  program.addCommand(provisionCommand());
  program.addCommand(statusCommand());
  program.addCommand(buildCommand());
  program.addCommand(pushCommand());
  program.addCommand(openfaasCommand());
  program.addCommand(deployCommand());
  program.addCommand(lsCommand());
  program.addCommand(invokeCommand());
  program.addCommand(logsCommand());
  program.addCommand(rmCommand());
  program.addCommand(k8sCommand());
  program.addCommand(labCommand());
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
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
