// Why: the function is configured only through its environment, as OpenFaaS, Kubernetes and
// OpenWhisk all configure containers: of-watchdog's own variable names (port, max_inflight,
// read_timeout, write_timeout, exec_timeout, healthcheck_interval) plus PIFAAS_* for what is ours.
// Everything is validated at start-up, so a typo stops the container with a message, not a surprise.
import { z } from 'zod';
import { parseGoDuration } from './go-duration.js';
import { DEFAULT_INLINE_RUN_MAX_MS, defaultParallelRuns, parseEngineChoice, type EngineChoice } from './inference-engine.js';
import { MAX_SERVING_PROCESSES } from './serving-processes.js';
import { FUNCTION_NAMES, modelsDirFromEnv, type FunctionName } from './model-catalog.js';
import { parseUrlPolicy, type UrlPolicy } from './url-policy.js';

export interface FunctionConfig {
  functionName: FunctionName;
  model: string | undefined;
  engine: EngineChoice;
  modelsDir: string;
  port: number;
  /** Whole-request read deadline (0: none). */
  readTimeoutMs: number;
  /** From request headers to the last response byte (must be > 0). */
  writeTimeoutMs: number;
  /** Deadline for producing the answer (0: none); 504 when passed. */
  execTimeoutMs: number;
  /** After SIGTERM: how long /_/health says 503 while requests are still served (default 0). */
  healthcheckIntervalMs: number;
  /** Concurrent function requests before 429 (0: unlimited). */
  maxInflight: number;
  maxBodyBytes: number;
  maxPixels: number;
  urlPolicy: UrlPolicy;
  urlTimeoutMs: number;
  /** Inferences run side by side per model (PIFAAS_INFERENCE_CONCURRENCY; default 2, 1 on one core; see inference-engine.ts). */
  inferenceConcurrency: number;
  ortSpinning: boolean;
  /** A run alone at most this long goes on the event loop (PIFAAS_INLINE_RUN_MAX; 0: never; see inference-engine.ts). */
  inlineRunMaxMs: number;
}

export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
/** sharp's pixel limit per image (PIFAAS_MAX_PIXELS): a larger one is a decompression bomb. */
export const DEFAULT_MAX_PIXELS = 50_000_000;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const duration = (name: string, fallback: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      try {
        return parseGoDuration(v === undefined || v.trim() === '' ? fallback : v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `${name}: ${(e as Error).message}` });
        return z.NEVER;
      }
    });

const integer = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return fallback;
      const n = Number(v.trim());
      if (!/^\d+$/.test(v.trim()) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number from ${min} to ${max}, not "${v}"` });
        return z.NEVER;
      }
      return n;
    });

const envSchema = z.object({
  PIFAAS_FUNCTION: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const name = v === undefined || v.trim() === '' ? 'faas-resnet' : v.trim();
      if (!(FUNCTION_NAMES as readonly string[]).includes(name)) {
        ctx.addIssue({ code: 'custom', message: `PIFAAS_FUNCTION must be ${FUNCTION_NAMES.join(' or ')}, not "${v}"` });
        return z.NEVER;
      }
      return name as FunctionName;
    }),
  PIFAAS_MODEL: z.string().optional(),
  PIFAAS_ENGINE: z
    .string()
    .optional()
    .transform((v, ctx) => {
      try {
        return parseEngineChoice(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    }),
  port: integer('port', 8080, 0, 65535),
  max_inflight: integer('max_inflight', 0, 0),
  read_timeout: duration('read_timeout', '10s'),
  write_timeout: duration('write_timeout', '10s'),
  exec_timeout: duration('exec_timeout', '10s'),
  healthcheck_interval: duration('healthcheck_interval', '0s'),
  PIFAAS_MAX_BODY_BYTES: integer('PIFAAS_MAX_BODY_BYTES', DEFAULT_MAX_BODY_BYTES, 1),
  PIFAAS_MAX_PIXELS: integer('PIFAAS_MAX_PIXELS', DEFAULT_MAX_PIXELS, 1),
  PIFAAS_URL_ALLOW: z.string().optional(),
  PIFAAS_URL_TIMEOUT: duration('PIFAAS_URL_TIMEOUT', '10s'),
  PIFAAS_INFERENCE_CONCURRENCY: integer('PIFAAS_INFERENCE_CONCURRENCY', 0, 1, 64),
  PIFAAS_ORT_SPINNING: integer('PIFAAS_ORT_SPINNING', 0, 0, 1),
  PIFAAS_INLINE_RUN_MAX: duration('PIFAAS_INLINE_RUN_MAX', `${DEFAULT_INLINE_RUN_MAX_MS}ms`),
  // Read by main.ts before this validation (serving-processes.ts: servingProcessCount); refused here when wrong.
  PIFAAS_PROCESSES: integer('PIFAAS_PROCESSES', 0, 1, MAX_SERVING_PROCESSES),
});

/** Reads and validates the function's configuration from an environment. */
export function functionConfigFromEnv(env: NodeJS.ProcessEnv = process.env): FunctionConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => i.message).join('; '));
  const e = parsed.data;
  if (e.write_timeout <= 0) throw new ConfigError('write_timeout must be more than 0s');
  let urlPolicy: UrlPolicy;
  try {
    urlPolicy = parseUrlPolicy(e.PIFAAS_URL_ALLOW);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  return {
    functionName: e.PIFAAS_FUNCTION,
    model: e.PIFAAS_MODEL?.trim() || undefined,
    engine: e.PIFAAS_ENGINE,
    modelsDir: modelsDirFromEnv(env),
    port: e.port,
    readTimeoutMs: e.read_timeout,
    writeTimeoutMs: e.write_timeout,
    execTimeoutMs: e.exec_timeout,
    healthcheckIntervalMs: e.healthcheck_interval,
    maxInflight: e.max_inflight,
    maxBodyBytes: e.PIFAAS_MAX_BODY_BYTES,
    maxPixels: e.PIFAAS_MAX_PIXELS,
    urlPolicy,
    urlTimeoutMs: e.PIFAAS_URL_TIMEOUT,
    inferenceConcurrency: e.PIFAAS_INFERENCE_CONCURRENCY || defaultParallelRuns(),
    ortSpinning: e.PIFAAS_ORT_SPINNING === 1,
    inlineRunMaxMs: e.PIFAAS_INLINE_RUN_MAX,
  };
}
