// Why: pifaas deploys what the project's stack.yml declares, in faas-cli's stack file format, so the
// same file also works with `faas-cli deploy`/`faas-cli up`. This module reads and checks that file
// (zod, with file:line:col for each problem), expands ${VAR} / ${VAR:-default} as faas-cli does,
// merges environment_file entries and turns one function into the gateway's FunctionDeployment.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isMap, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { UserError } from '../user-error.js';
import type { FunctionDeployment, FunctionResources } from './gateway-schemas.js';

const scalarString = z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v));
const stringMap = z.record(z.string(), scalarString);
const resources = z
  .object({ memory: scalarString.optional(), cpu: scalarString.optional() })
  .strict();

/** Memory as Docker/Kubernetes write it: 128M, 1Gi, 512Mi, 256m is not memory. */
const MEMORY_RE = /^\d+(\.\d+)?(k|K|M|G|T|Ki|Mi|Gi|Ti)?$/;
/** CPU as a Kubernetes quantity (0.5, 2, 500m); faas-swarm takes nano-CPUs and pifaas converts. */
const CPU_RE = /^(\d+(\.\d+)?|\d+m)$/;

export const stackFunctionSchema = z
  .object({
    lang: z.string().optional(),
    handler: z.string().optional(),
    image: z.string().min(1, 'image is required: the container image to deploy, like ghcr.io/you/faas-resnet:0.1.0'),
    fprocess: z.string().optional(),
    environment: stringMap.optional(),
    environment_file: z.array(z.string()).optional(),
    secrets: z.array(z.string()).optional(),
    skip_build: z.boolean().optional(),
    constraints: z.array(z.string()).optional(),
    labels: stringMap.optional(),
    annotations: stringMap.optional(),
    limits: resources.optional(),
    requests: resources.optional(),
    build_args: stringMap.optional(),
    build_options: z.array(z.string()).optional(),
    namespace: z.string().optional(),
    readonly_root_filesystem: z.boolean().optional(),
  })
  .strict()
  .superRefine((fn, ctx) => {
    for (const kind of ['limits', 'requests'] as const) {
      const r = fn[kind];
      if (r?.memory !== undefined && !MEMORY_RE.test(r.memory)) {
        ctx.addIssue({ code: 'custom', path: [kind, 'memory'], message: `"${r.memory}" is not an amount of memory; write it like 512M or 1Gi` });
      }
      if (r?.cpu !== undefined && !CPU_RE.test(r.cpu)) {
        ctx.addIssue({ code: 'custom', path: [kind, 'cpu'], message: `"${r.cpu}" is not a CPU amount; write it like 2, 0.5 or 500m` });
      }
    }
  });

export const stackFileSchema = z
  .object({
    version: scalarString.optional(),
    provider: z
      .object({
        name: z.enum(['openfaas', 'faas'], { message: 'provider.name must be openfaas' }),
        gateway: z.string().optional(),
        network: z.string().optional(),
      })
      .strict(),
    functions: z.record(z.string(), stackFunctionSchema),
    configuration: z.unknown().optional(),
  })
  .strict()
  .superRefine((stack, ctx) => {
    for (const name of Object.keys(stack.functions)) {
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 63) {
        ctx.addIssue({ code: 'custom', path: ['functions', name], message: 'a function name has lower-case letters, digits and hyphens (it becomes a DNS name)' });
      }
    }
  });

export type StackFunctionSpec = z.infer<typeof stackFunctionSchema>;

export interface StackFunction extends Omit<StackFunctionSpec, 'environment'> {
  name: string;
  /** environment_file entries first, then `environment` (which wins), as faas-cli merges them. */
  environment: Record<string, string>;
}

export interface StackFile {
  file: string;
  version?: string;
  provider: { name: string; gateway?: string; network?: string };
  functions: Record<string, StackFunction>;
}

/**
 * Expands ${VAR} and ${VAR:-default} like faas-cli's envsubst (drone/envsubst); $$ is a literal $,
 * so $${VAR} stays ${VAR}.
 */
export function expandEnv(text: string, env: NodeJS.ProcessEnv = process.env): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string | undefined, dflt: string | undefined) => {
    if (name === undefined) return '$';
    const v = env[name];
    return v !== undefined && v !== '' ? v : (dflt ?? '');
  });
}

function parseYaml(text: string, file: string): { value: unknown; where: (p: PropertyKey[]) => string } {
  const lines = new LineCounter();
  // merge: `<<: *anchor` merge keys, which faas-cli's YAML reader (go-yaml) takes too.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, merge: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lines.linePos(e.pos[0]);
    throw new UserError(`${file}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`, 'stack.yml is YAML in faas-cli\'s stack format (provider:, functions:)');
  }
  const where = (p: PropertyKey[]): string => {
    for (let n = p.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(p.slice(0, n).map(String), true);
      const range = (node as { range?: [number, number, number] } | undefined)?.range;
      if (range) {
        // Point at the key when the path ends at a map entry.
        let offset = range[0];
        const parent = n > 0 ? (n === 1 ? doc.contents : doc.getIn(p.slice(0, n - 1).map(String), true)) : undefined;
        if (isMap(parent)) {
          const pair = parent.items.find((it) => String((it.key as { value?: unknown })?.value ?? it.key) === String(p[n - 1]));
          const kr = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
          if (kr) offset = kr[0];
        }
        const pos = lines.linePos(offset);
        return `${pos.line}:${pos.col}`;
      }
    }
    return '1:1';
  };
  return { value: doc.toJS(), where };
}

/** Parses stack.yml text; `file` names it in messages and anchors environment_file paths. */
export async function parseStackFile(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Promise<StackFile> {
  const { value, where } = parseYaml(expandEnv(text, env), file);
  const r = stackFileSchema.safeParse(value);
  if (!r.success) {
    const lines = r.error.issues.flatMap((i) => {
      const line = (p: PropertyKey[], msg: string) => `  ${file}:${where(p)}: ${p.length ? `${p.map(String).join('.')}: ` : ''}${msg}`;
      // Point at each unknown key itself: it is most often a typo.
      if (i.code === 'unrecognized_keys') return i.keys.map((k) => line([...i.path, k], `unknown key "${k}" (not in faas-cli's stack format)`));
      return [line(i.path, i.message)];
    });
    throw new UserError(`${file} is not a valid stack file:\n${lines.join('\n')}`, 'see the stack.yml shipped with pifaas (faas-cli\'s format: provider.name openfaas, functions.NAME.image, environment, labels, limits, constraints)');
  }
  const functions: Record<string, StackFunction> = {};
  for (const [name, fn] of Object.entries(r.data.functions)) {
    const environment: Record<string, string> = {};
    for (const envFile of fn.environment_file ?? []) {
      Object.assign(environment, await readEnvironmentFile(path.resolve(path.dirname(file), envFile), env));
    }
    Object.assign(environment, fn.environment ?? {});
    functions[name] = { ...fn, name, environment };
  }
  return { file, version: r.data.version, provider: r.data.provider, functions };
}

async function readEnvironmentFile(file: string, env: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read the environment_file ${file}: ${(e as Error).message}`, 'environment_file paths are relative to stack.yml', 1, { cause: e });
  }
  const { value } = parseYaml(expandEnv(text, env), file);
  const r = z.object({ environment: stringMap }).safeParse(value);
  if (!r.success) throw new UserError(`${file} is not an environment file: ${z.prettifyError(r.error)}`, 'it holds one `environment:` mapping of names to values');
  return r.data.environment;
}

export async function loadStackFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<StackFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT' ? `there is no stack file at ${file}` : `cannot read ${file}: ${(e as Error).message}`,
      'run pifaas from the project folder (it has stack.yml) or pass -f PATH/stack.yml',
      1,
      { cause: e },
    );
  }
  return parseStackFile(text, file, env);
}

/** The named function of a stack file, or an error listing the ones it has. */
export function stackFunction(stack: StackFile, name: string): StackFunction {
  const fn = stack.functions[name];
  if (!fn) {
    const names = Object.keys(stack.functions);
    throw new UserError(`${stack.file} defines no function "${name}"`, names.length ? `it defines: ${names.join(', ')}` : 'add it under functions:');
  }
  return fn;
}

/** Kubernetes CPU quantity (2, 0.5, 500m) in nano-CPUs, the unit faas-swarm passes to Docker. */
export function cpuToNanoCpus(cpu: string): string {
  const nano = cpu.endsWith('m') ? Number(cpu.slice(0, -1)) * 1e6 : Number(cpu) * 1e9;
  return String(Math.round(nano));
}

export interface DeploymentTarget {
  /** The provider's orchestration from /system/info: swarm resources are nano-CPUs, not quantities. */
  orchestration?: string;
  /** Namespace from --namespace (wins over the function's own). */
  namespace?: string;
}

/** The FunctionDeployment for one stack.yml function, as faas-cli builds it. */
export function toFunctionDeployment(fn: StackFunction, target: DeploymentTarget = {}): FunctionDeployment {
  const swarm = target.orchestration === 'swarm';
  const res = (r: StackFunction['limits']): FunctionResources | undefined => {
    if (!r || (r.memory === undefined && r.cpu === undefined)) return undefined;
    return {
      ...(r.memory !== undefined ? { memory: r.memory } : {}),
      ...(r.cpu !== undefined ? { cpu: swarm ? cpuToNanoCpus(r.cpu) : r.cpu } : {}),
    };
  };
  const namespace = target.namespace ?? fn.namespace;
  const limits = res(fn.limits);
  const requests = res(fn.requests);
  return {
    service: fn.name,
    image: fn.image,
    ...(namespace ? { namespace } : {}),
    ...(fn.fprocess ? { envProcess: fn.fprocess } : {}),
    envVars: fn.environment,
    ...(fn.constraints ? { constraints: fn.constraints } : {}),
    ...(fn.secrets ? { secrets: fn.secrets } : {}),
    labels: fn.labels ?? {},
    ...(fn.annotations ? { annotations: fn.annotations } : {}),
    ...(limits ? { limits } : {}),
    ...(requests ? { requests } : {}),
    ...(fn.readonly_root_filesystem ? { readOnlyRootFilesystem: true } : {}),
  };
}
