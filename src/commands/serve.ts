// Why: `pifaas serve faas-resnet` runs the exact function the cluster runs, in this process, on
// localhost: same model loading, same HTTP contract, and it answers on /function/<name> too, so the
// curl that works against a Pi's gateway works here unchanged. It is the README's main-job command.
import { Command, Option } from 'commander';
import { withExamples } from '../cli/command-help.js';
import { ConfigError, functionConfigFromEnv, type FunctionConfig } from '../function/function-config.js';
import { startFunctionService } from '../function/function-service.js';
import { CatalogError, FUNCTION_NAMES, isFunctionName } from '../function/model-catalog.js';
import { UserError } from '../user-error.js';

interface ServeFlags {
  port?: string;
  host: string;
  model?: string;
  engine?: string;
}

function configFor(name: string, flags: ServeFlags): FunctionConfig {
  if (!isFunctionName(name)) {
    throw new UserError(`unknown function "${name}"`, `pifaas serve runs ${FUNCTION_NAMES.join(' or ')}`);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, PIFAAS_FUNCTION: name };
  if (flags.port !== undefined) env.port = flags.port;
  if (flags.model !== undefined) env.PIFAAS_MODEL = flags.model;
  if (flags.engine !== undefined) env.PIFAAS_ENGINE = flags.engine;
  try {
    return functionConfigFromEnv(env);
  } catch (e) {
    if (e instanceof ConfigError) throw new UserError(e.message, 'check the flags and the function environment variables (see pifaas serve --help)');
    throw e;
  }
}

export function serveCommand(): Command {
  const cmd = new Command('serve')
    .description('run a classifier function locally (the same HTTP contract as on the cluster; Ctrl-C drains and stops)')
    .argument('<function>', `the function: ${FUNCTION_NAMES.join(' or ')}`)
    .option('-p, --port <port>', 'TCP port (env: port; default 8080; 0 picks a free one)')
    .option('--host <address>', 'address to listen on (0.0.0.0 for every interface)', '127.0.0.1')
    .option('-m, --model <id>', 'catalog model to serve (env: PIFAAS_MODEL; see pifaas models list)')
    .addOption(new Option('--engine <engine>', 'inference engine (env: PIFAAS_ENGINE)').choices(['auto', 'node', 'web']))
    .addHelpText(
      'after',
      '\nEnvironment (as in the container): max_inflight, read_timeout, write_timeout, exec_timeout (Go durations like 60s),\n' +
        'PIFAAS_MAX_BODY_BYTES, PIFAAS_MAX_PIXELS, PIFAAS_URL_ALLOW (enables {"url": ...} input for the listed hosts),\n' +
        'PIFAAS_MODEL_MIRROR, PIFAAS_MODELS_DIR.',
    )
    .action(async (name: string, flags: ServeFlags) => {
      const config = configFor(name, flags);
      const log = (line: string) => process.stderr.write(`${line}\n`);
      let service;
      try {
        service = await startFunctionService(config, { host: flags.host, log });
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code === 'EADDRINUSE') throw new UserError(`port ${config.port} on ${flags.host} is already in use`, 'pick another one with --port');
        if (err.code === 'EACCES') throw new UserError(`not allowed to listen on port ${config.port}`, 'use a port above 1023');
        throw e;
      }
      const { server, url } = service;
      let stopped!: () => void;
      const done = new Promise<void>((resolve) => (stopped = resolve));
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        log(`stopping: finishing ${server.inFlight} request(s) in flight`);
        void server.drain().then(stopped);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      try {
        const classifier = await service.ready;
        const info = classifier.info();
        log(`${info.function}: ${info.models.map((m) => `${m.id} (${m.where})`).join(', ')} on ${info.engine.name} ${info.engine.version}`);
        log(`ready on ${url}/function/${name} (and ${url}/); health: ${url}/_/health`);
        log(`try: curl --data-binary @photo.jpg ${url}/function/${name}`);
      } catch (e) {
        await server.close();
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        if (e instanceof CatalogError) throw new UserError(e.message, 'point PIFAAS_MODELS_DIR at a folder with a valid catalog.json, or reinstall pifaas');
        throw new UserError(`cannot start ${name}: ${(e as Error).message}`, 'pifaas models list shows the models; pifaas models pull ID fetches a remote one');
      }
      // Serve until a signal drains the server.
      await done;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      log('stopped');
      // The onnxruntime-web engine keeps worker threads alive; nothing else is left to do.
      process.exit(process.exitCode ?? 0);
    });
  return withExamples(
    cmd,
    'pifaas serve faas-resnet',
    'pifaas serve faas-resnet --model shufflenet-v2-12-int8 --port 9000',
    'pifaas serve faas-digits --host 0.0.0.0',
    'curl --data-binary @tiger.jpg "http://localhost:8080/function/faas-resnet?top=3"',
  );
}
