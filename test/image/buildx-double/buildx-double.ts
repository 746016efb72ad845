// Why: tests install the buildx test double (docker-buildx.mjs next to this file) as a Docker CLI
// plugin in a DOCKER_CONFIG of their own, so only the commands given that DOCKER_CONFIG see a
// `docker buildx`, and read back every command line the plugin was called with.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

const DOUBLE = path.join(import.meta.dirname, 'docker-buildx.mjs');

export interface BuildxDouble {
  /** Give this as DOCKER_CONFIG: its cli-plugins/ holds docker-buildx. */
  dockerConfig: string;
  logFile: string;
  /** The argv (after the plugin name) of every call so far, oldest first; metadata probes left out. */
  calls(): Promise<string[][]>;
}

/** Installs the double under `dir` (DOCKER_CONFIG = dir/docker-config). */
export async function installBuildxDouble(dir: string): Promise<BuildxDouble> {
  const dockerConfig = path.join(dir, 'docker-config');
  const logFile = path.join(dir, 'buildx-calls.jsonl');
  await mkdir(path.join(dockerConfig, 'cli-plugins'), { recursive: true });
  const plugin = path.join(dockerConfig, 'cli-plugins', 'docker-buildx');
  // The docker CLI runs plugins as executables: a shell wrapper pins this Node and the log file.
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  await writeFile(plugin, `#!/bin/sh\nPIFAAS_BUILDX_DOUBLE_LOG=${q(logFile)} exec ${q(process.execPath)} ${q(DOUBLE)} "$@"\n`);
  await chmod(plugin, 0o755);
  await writeFile(logFile, '');
  return {
    dockerConfig,
    logFile,
    calls: async () =>
      (await readFile(logFile, 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { argv: string[] }).argv)
        .filter((a) => a[0] !== 'docker-cli-plugin-metadata')
        .map((a) => (a[0] === 'buildx' ? a.slice(1) : a)),
  };
}
