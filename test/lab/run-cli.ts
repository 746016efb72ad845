// Why: tests assert what a user sees; this runs the real CLI (from source) in a child process and
// returns its exit code, stdout and stderr.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('./cli-entry.ts', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; prefix?: string[] } = {}): Promise<CliResult> {
  const prefix = options.prefix ?? [];
  const argv = [...prefix, process.execPath, '--import', 'tsx', ENTRY, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** The JSON a `--json` run printed; if it printed none, an error that shows its exit code and stderr. */
export function jsonOutput<T>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`the CLI printed no JSON (exit code ${r.code}); stdout: ${JSON.stringify(r.stdout.slice(0, 2000))}; stderr: ${r.stderr.slice(-4000)}`);
  }
}
