// Why: command tests run the real CLI and look at what a user sees: stdout, stderr and the exit code,
// with the environment chosen. In this process by default (a child process costs seconds of start-up
// per command); in a child process (from source, through tsx) when stdin is fed in or asked for.
import { spawn } from 'node:child_process';
import path from 'node:path';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  stdin?: Buffer | string;
  cwd?: string;
  timeoutMs?: number;
  /** Run in a child process even without stdin. */
  spawn?: boolean;
  /** Close the CLI's stdout once this many lines came, as `| head -N` does (a child process). */
  closeStdoutAfterLines?: number;
}

/** Variables from the machine running the tests that would change what the CLI does. */
const MACHINE_VARS = ['OPENFAAS_URL', 'OPENFAAS_CONFIG', 'DOCKER_HOST'];

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  if (opts.stdin !== undefined || opts.spawn || opts.cwd || opts.closeStdoutAfterLines !== undefined) return runCliChild(args, opts);
  return runCliHere(args, opts.env ?? {});
}

async function runCliHere(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const { main } = await import('../../src/cli.js');
  const saved: NodeJS.ProcessEnv = {};
  for (const k of new Set([...MACHINE_VARS, ...Object.keys(env)])) {
    saved[k] = process.env[k];
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const write = process.stdout.write;
  const writeErr = process.stderr.write;
  const collect = (into: Buffer[]) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      into.push(Buffer.from(chunk));
      const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      cb?.();
      return true;
    }) as typeof process.stdout.write;
  process.stdout.write = collect(out);
  process.stderr.write = collect(err);
  const savedCode = process.exitCode;
  process.exitCode = undefined;
  try {
    await main(['node', 'pifaas', ...args]);
    const stdoutBytes = Buffer.concat(out);
    return { code: Number(process.exitCode ?? 0), stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes };
  } finally {
    process.exitCode = savedCode;
    process.stdout.write = write;
    process.stderr.write = writeErr;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

function runCliChild(args: string[], opts: CliOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/openfaas/cli-main.ts'), ...args], {
      cwd: opts.cwd ?? ROOT,
      // A clean environment: no OPENFAAS_URL or DOCKER_HOST from the machine running the tests.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_PATH: path.join(ROOT, 'node_modules'), ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => {
      out.push(c);
      const wanted = opts.closeStdoutAfterLines;
      if (wanted !== undefined && Buffer.concat(out).toString('utf8').split('\n').length > wanted) child.stdout.destroy();
    });
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
    });
    // A CLI may stop reading its input early (it refuses it): that is for the test to judge, not an EPIPE here.
    child.stdin.on('error', () => {});
    if (opts.stdin !== undefined) child.stdin.end(opts.stdin);
    else child.stdin.end();
  });
}
