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
    // buildx 0.10+ attaches a provenance attestation to pushed images by default (builders that can):
    // the pushed tag becomes an index with an "unknown/unknown" entry, and imagetools create carries it
    // into the list. Off, the list names only the platforms built, as on the Engine API path.
    '--provenance=false',
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

/** How a failure names the command: `buildx build --platform linux/arm64`, `buildx imagetools create`. */
function commandName(argv: string[]): string {
  const words = argv.slice(0, 3);
  if (argv[2]?.startsWith('--') && argv[3] !== undefined && !argv[3].startsWith('-')) words.push(argv[3]);
  return words.join(' ');
}

/** Runs the docker CLI; each output line goes to onLine; a failure carries the last lines. */
export function runDockerCli(argv: string[], onLine?: (line: string) => void, dockerCli = 'docker', env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(dockerCli, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
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
      else reject(new UserError(`\`docker ${commandName(argv)} ...\` failed (exit ${code}):\n${tail.map((l) => `  ${l}`).join('\n')}`, 'the lines above come from docker buildx'));
    });
  });
}

/** True when `docker buildx` is installed and answers. */
export async function buildxAvailable(dockerCli = 'docker', env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  try {
    await runDockerCli(['buildx', 'version'], undefined, dockerCli, env);
    return true;
  } catch {
    return false;
  }
}
