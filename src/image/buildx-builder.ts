// Why: when the docker buildx plugin is installed, pifaas builds with it (the tool users know, any
// builder driver, BuildKit's own cache) and lets `buildx imagetools create` join the per-platform
// images into the one multi-platform manifest list. The tags are the same as on the Engine API path:
// NAME:TAG-<arch> per platform, NAME:TAG for the list.
import { spawn } from 'node:child_process';
import { UserError } from '../user-error.js';
import type { FunctionPlatform } from './platforms.js';

export interface BuildxBuildPlan {
  platform: FunctionPlatform;
  contextDir: string;
  buildArgs: Record<string, string>;
  tags: string[];
  /** load: into the local Docker image store; push: straight to the registry named by the tags. */
  output: 'load' | 'push';
  noCache?: boolean;
}

/** The argv (after `docker`) of one platform's buildx build. */
export function buildxBuildArgv(plan: BuildxBuildPlan): string[] {
  return [
    'buildx',
    'build',
    '--platform',
    plan.platform.name,
    '--file',
    `${plan.contextDir}/${plan.platform.dockerfile}`,
    ...Object.entries(plan.buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
    ...plan.tags.flatMap((t) => ['--tag', t]),
    plan.output === 'load' ? '--load' : '--push',
    ...(plan.noCache ? ['--no-cache'] : []),
    '--progress',
    'plain',
    plan.contextDir,
  ];
}

/** The argv (after `docker`) that writes the manifest list `target` from per-platform images. */
export function imagetoolsCreateArgv(target: string, sources: string[]): string[] {
  return ['buildx', 'imagetools', 'create', '--tag', target, ...sources];
}

/** Runs the docker CLI; each output line goes to onLine; a failure carries the last lines. */
export function runDockerCli(argv: string[], onLine?: (line: string) => void, dockerCli = 'docker'): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(dockerCli, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    let stdout = '';
    const take = (chunk: Buffer, keep: boolean) => {
      const text = chunk.toString();
      if (keep) stdout += text;
      for (const line of text.split('\n')) {
        const l = line.trimEnd();
        if (!l) continue;
        tail.push(l);
        if (tail.length > 15) tail.shift();
        onLine?.(l);
      }
    };
    child.stdout.on('data', (c: Buffer) => take(c, true));
    child.stderr.on('data', (c: Buffer) => take(c, false));
    child.on('error', (e) => reject(new UserError(`cannot run ${dockerCli}: ${e.message}`, 'install the Docker CLI, or use --builder engine')));
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new UserError(`\`docker ${argv.slice(0, 3).join(' ')} ...\` failed (exit ${code}):\n${tail.map((l) => `  ${l}`).join('\n')}`, 'the lines above come from docker buildx'));
    });
  });
}

/** True when `docker buildx` is installed and answers. */
export async function buildxAvailable(dockerCli = 'docker'): Promise<boolean> {
  try {
    await runDockerCli(['buildx', 'version'], undefined, dockerCli);
    return true;
  } catch {
    return false;
  }
}
