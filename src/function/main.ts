// Why: the container's entry point (`node dist/function/main.js`): reads the environment, serves the
// function on `port`, exits 1 with one clear line when the configuration or the model is unusable (so
// the orchestrator shows the reason and restarts it), and drains gracefully on SIGTERM. With
// onnxruntime-node on several cores it serves from several processes (serving-processes.ts): the
// process started first supervises them, and they run this same script.
import cluster from 'node:cluster';
import os from 'node:os';
import { makeBoardDir, servingProcessBoard, servingProcessCount, superviseServingProcesses, tellParentFailed, tellParentReady, toParentLog } from './serving-processes.js';

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
const error = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  // The supervising parent loads nothing more (no zod, sharp or onnxruntime): its first serving
  // process starts at once.
  let processes = servingProcessCount(process.env);
  if (cluster.isPrimary && processes > 1) {
    let boardDir: string | undefined;
    try {
      boardDir = makeBoardDir();
    } catch (e) {
      log(`cannot make the serving processes' shared folder in ${os.tmpdir()} (${(e as Error).message}); serving from one process (make the temporary folder writable, or set PIFAAS_PROCESSES=1)`);
      processes = 1;
    }
    if (boardDir) process.exit(await superviseServingProcesses({ processes, boardDir, log, error }));
  }

  const { ConfigError, functionConfigFromEnv } = await import('./function-config.js');
  let config;
  try {
    config = functionConfigFromEnv(process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const line = `bad configuration: ${e.message}`;
    if (cluster.isWorker) await tellParentFailed(line);
    else error(`pifaas function: ${line}`);
    process.exit(1);
  }
  const { startFunctionService } = await import('./function-service.js');
  const board = servingProcessBoard(processes);
  // A serving process tells its parent, which prints each start-up line once; then it logs requests itself.
  let started = false;
  const serviceLog = (line: string) => (board && !started ? toParentLog(line) : log(line));
  const t0 = performance.now();
  const fail = async (message: string) => {
    const line = `cannot start ${config.functionName}: ${message}`;
    if (board) await tellParentFailed(line);
    else error(`pifaas function: ${line}`);
    process.exit(1);
  };
  let stopping = false;
  let server: { inFlight: number; drain(): Promise<void> } | undefined = undefined;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    // The parent says it once for all serving processes.
    if (!board) log(`${signal}: refusing new requests, finishing ${server?.inFlight ?? 0} in flight`);
    if (!server) process.exit(0);
    void server.drain().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // The first serving process listens at once (503 while loading); the others once they can answer.
  const service = await startFunctionService(config, { log: serviceLog, ...(board ? { board, listenWhenReady: board.slot > 0 } : {}) }).catch((e: Error) => fail(e.message));
  if (!service) return;
  server = service.server;
  if (stopping) return void server.drain().then(() => process.exit(0));
  if (!board || board.slot === 0) serviceLog(`${config.functionName}: listening on port ${service.server.address.port}; loading model`);
  try {
    const classifier = await service.ready;
    const info = classifier.info();
    const summary = `${info.models.map((m) => `${m.id} (${m.where})`).join(', ')} on ${info.engine.name} ${info.engine.version} (${info.engine.reason})`;
    started = true;
    if (board) tellParentReady(config.functionName, summary);
    else log(`${config.functionName}: ready in ${Math.round(performance.now() - t0)} ms: ${summary}`);
  } catch (e) {
    await service.server.close();
    await fail((e as Error).message);
  }
}

await main();
