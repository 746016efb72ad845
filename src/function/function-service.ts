// Why: both ways of running the function, the container entry (main.ts) and `pifaas serve`, do the
// same thing: listen at once (so /_/health can say 503 while loading), load and warm the model(s),
// then turn healthy. One place for it keeps the two identical. (A serving process that joins a
// function already serving loads first and listens then: serving-processes.ts.)
import { startClassifier, type Classifier } from './classifier.js';
import { reserveHeapHeadroom } from './heap-headroom.js';
import type { FunctionConfig } from './function-config.js';
import { FunctionServer } from './function-server.js';
import type { InflightBoard } from './inflight-board.js';

export interface FunctionService {
  server: FunctionServer;
  url: string;
  /** Resolves once the model is loaded and warmed; rejects when loading fails. */
  ready: Promise<Classifier>;
}

export interface StartServiceOptions {
  host?: string;
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** This is one of several serving processes sharing this board (serving-processes.ts). */
  board?: InflightBoard;
  /**
   * Load and warm the model before listening: a serving process that joins a function already
   * serving takes connections only once it can answer them.
   */
  listenWhenReady?: boolean;
}

export async function startFunctionService(config: FunctionConfig, opts: StartServiceOptions = {}): Promise<FunctionService> {
  const log = opts.log ?? (() => {});
  const server = new FunctionServer({
    functionName: config.functionName,
    readTimeoutMs: config.readTimeoutMs,
    writeTimeoutMs: config.writeTimeoutMs,
    execTimeoutMs: config.execTimeoutMs,
    healthcheckIntervalMs: config.healthcheckIntervalMs,
    maxInflight: config.maxInflight,
    maxBodyBytes: config.maxBodyBytes,
    urlPolicy: config.urlPolicy,
    urlTimeoutMs: config.urlTimeoutMs,
    log,
    ...(opts.board ? { board: opts.board } : {}),
  });
  const loaded = startClassifier({
    name: config.functionName,
    ...(config.model ? { model: config.model } : {}),
    engine: config.engine,
    modelsDir: config.modelsDir,
    env: opts.env ?? process.env,
    log,
    maxPixels: config.maxPixels,
    inferenceConcurrency: config.inferenceConcurrency,
    ortSpinning: config.ortSpinning,
    inlineRunMaxMs: config.inlineRunMaxMs,
    ...(opts.board ? { board: opts.board } : {}),
  });
  loaded.catch(() => {}); // handled below, once listening (or by the caller, when it waits for it first)
  if (opts.listenWhenReady) await loaded;
  const address = await server.listen(config.port, opts.host);
  const host = address.family === 'IPv6' ? `[${address.address === '::' ? '::1' : address.address}]` : address.address === '0.0.0.0' ? '127.0.0.1' : address.address;
  const url = `http://${host}:${address.port}`;
  const ready = loaded.then(
    (classifier) => {
      server.ready(classifier);
      void reserveHeapHeadroom();
      return classifier;
    },
    (err: unknown) => {
      server.failed((err as Error).message);
      throw err;
    },
  );
  ready.catch(() => {});
  return { server, url, ready };
}
