// Why: the container's entry point (`node dist/function/main.js`): reads the environment, serves the
// function on `port`, exits 1 with one clear line when the configuration or the model is unusable (so
// the orchestrator shows the reason and restarts it), and drains gracefully on SIGTERM.
import { ConfigError, functionConfigFromEnv } from './function-config.js';
import { startFunctionService } from './function-service.js';

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);

async function main(): Promise<void> {
  let config;
  try {
    config = functionConfigFromEnv(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`pifaas function: bad configuration: ${e.message}\n`);
      process.exit(1);
    }
    throw e;
  }
  const started = performance.now();
  const service = await startFunctionService(config, { log });
  log(`${config.functionName}: listening on port ${service.server.address.port}; loading model`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: refusing new requests, finishing ${service.server.inFlight} in flight`);
    void service.server.drain().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    const classifier = await service.ready;
    const info = classifier.info();
    log(
      `${info.function}: ready in ${Math.round(performance.now() - started)} ms: ${info.models.map((m) => `${m.id} (${m.where})`).join(', ')} on ${info.engine.name} ${info.engine.version} (${info.engine.reason})`,
    );
  } catch (e) {
    process.stderr.write(`pifaas function: cannot start ${config.functionName}: ${(e as Error).message}\n`);
    await service.server.close();
    process.exit(1);
  }
}

await main();
