// Why: "this machine" is a node too (a single-box cluster, tests, the lab's host side); the local
// operator gives it the same interface as an SSH node, running commands through /bin/sh.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import type { Duplex } from 'node:stream';
import { CommandOperator, type BecomeContext, type RawProcess } from './command-runner.js';
import { DEFAULT_DOCKER_SOCKET } from './operator.js';

export interface LocalOperatorOptions {
  name?: string;
  /** sudo password source (only asked when sudo asks). */
  becomePassword?: () => Promise<string | undefined>;
}

export class LocalOperator extends CommandOperator {
  readonly name: string;
  readonly address = 'local';
  readonly user: string;
  protected readonly become: BecomeContext;

  constructor(options: LocalOperatorOptions = {}) {
    super();
    this.name = options.name ?? 'local';
    this.user = userInfo().username;
    this.become = { node: this.name, user: this.user, isRoot: process.getuid?.() === 0, becomePassword: options.becomePassword };
  }

  protected spawnProcess(commandLine: string): Promise<RawProcess> {
    return spawnLocal(commandLine);
  }

  openDockerSocket(socketPath = DEFAULT_DOCKER_SOCKET): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const s = connect(socketPath);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
  }

  async reconnect(): Promise<void> {}

  async close(): Promise<void> {}
}

/** Starts a command line with /bin/sh on this machine (the local operator's spawner). */
export async function spawnLocal(commandLine: string): Promise<RawProcess> {
  // Its own process group, so a timeout stops the whole command (sh and what it started).
  const child = spawn('/bin/sh', ['-c', commandLine], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(127));
    child.once('close', (code) => resolve(code));
  });
  return { stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, exited, kill: () => killGroup(child.pid) };
}

function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}
