// Why: the SSH and the local operator run commands the same way - collect output, feed stdin,
// enforce a timeout, and become root through sudo without ever putting the password on a command
// line. sudo is run with `-S` and a unique prompt: the password is written to stdin only when that
// prompt shows up on stderr (so passwordless sudo and cached credentials just work), and the
// command's own stdin is sent only after a marker line proves sudo has finished (Ansible's method).
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable, type Duplex, type Writable } from 'node:stream';
import { CommandFailedError, CommandTimeoutError, SudoError, type Operator, type RunOptions, type RunResult, type WriteFileOptions } from './operator.js';
import { shellQuote } from './shell-quote.js';

/** A started command: its three streams, how it ended, and a way to stop it. */
export interface RawProcess {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Resolves with the exit code (null when killed by a signal or the channel closed first). */
  exited: Promise<number | null>;
  kill(): void;
}

export type Spawner = (commandLine: string) => Promise<RawProcess>;

export interface BecomeContext {
  /** Node name for messages. */
  node: string;
  /** Login user name for messages. */
  user: string;
  /** True when the login user is root: sudo is skipped. */
  isRoot: boolean;
  /** The sudo password, if one is known (asked lazily, only when sudo asks). */
  becomePassword?: () => Promise<string | undefined>;
}

export async function runCommand(spawn: Spawner, ctx: BecomeContext, command: string, options: RunOptions = {}): Promise<RunResult> {
  const become = options.sudo === true && !ctx.isRoot;
  const tag = randomBytes(8).toString('hex');
  const marker = `PIFAAS-BECOME-SUCCESS-${tag}`;
  const prompt = `[pifaas sudo ${tag}] password:`;
  const line = become ? `sudo -H -S -p ${shellQuote(prompt)} -- sh -c ${shellQuote(`echo ${marker}; ${command}`)}` : command;

  const proc = await spawn(line);
  const stdoutChunks: Buffer[] = [];
  const stderrChunks: Buffer[] = [];
  let pending = Buffer.alloc(0); // stdout before the marker (sudo mode)
  let pendingErr = '';
  let becameRoot = !become;
  let prompts = 0;
  let failure: Error | undefined;
  let timer: NodeJS.Timeout | undefined;

  const fail = (e: Error) => {
    if (!failure) failure = e;
    proc.kill();
  };

  const sendStdin = () => {
    const input = options.stdin;
    if (input === undefined) {
      proc.stdin.end();
    } else if (typeof input === 'string' || Buffer.isBuffer(input)) {
      proc.stdin.end(input);
    } else {
      input.on('error', (e) => fail(e));
      input.pipe(proc.stdin);
    }
  };
  proc.stdin.on('error', () => {
    /* the command may exit without reading its stdin */
  });

  proc.stdout.on('data', (chunk: Buffer) => {
    if (becameRoot) {
      stdoutChunks.push(chunk);
      return;
    }
    pending = Buffer.concat([pending, chunk]);
    const at = pending.indexOf(`${marker}\n`);
    if (at >= 0) {
      becameRoot = true;
      const rest = pending.subarray(at + marker.length + 1);
      if (rest.length) stdoutChunks.push(rest);
      pending = Buffer.alloc(0);
      stderrChunks.length = 0; // sudo's lecture and prompts are not the command's output
      sendStdin();
    }
  });
  proc.stderr.on('data', (chunk: Buffer) => {
    stderrChunks.push(chunk);
    if (becameRoot) return;
    pendingErr += chunk.toString('utf8');
    let count = 0;
    for (let i = pendingErr.indexOf(prompt); i >= 0; i = pendingErr.indexOf(prompt, i + 1)) count++;
    while (prompts < count) {
      prompts++;
      if (prompts === 1) {
        void (ctx.becomePassword?.() ?? Promise.resolve(undefined)).then(
          (password) => {
            if (password === undefined) {
              fail(
                new SudoError(
                  `${ctx.node}: sudo needs a password for user ${ctx.user}, and none was given`,
                  'set ansible_become_password in the inventory (or PIFAAS_BECOME_PASSWORD in the environment), pass --ask-become-pass, or allow passwordless sudo for this user',
                ),
              );
            } else proc.stdin.write(`${password}\n`);
          },
          (e: unknown) => fail(e instanceof Error ? e : new Error(String(e))),
        );
      } else {
        fail(
          new SudoError(
            `${ctx.node}: sudo rejected the password for user ${ctx.user}`,
            'check ansible_become_password in the inventory, PIFAAS_BECOME_PASSWORD, or the password typed at the prompt',
          ),
        );
      }
    }
  });

  if (!become) sendStdin();
  if (options.timeoutMs !== undefined) {
    timer = setTimeout(() => fail(new CommandTimeoutError(ctx.node, command, options.timeoutMs ?? 0)), options.timeoutMs);
  }
  let code: number | null;
  try {
    code = await proc.exited;
  } finally {
    if (timer) clearTimeout(timer);
  }
  if (failure) throw failure;

  const stdoutBytes = Buffer.concat(stdoutChunks);
  const stderr = Buffer.concat(stderrChunks).toString('utf8');
  // No exit status at all: the command was cut off (the connection or the node went away) before
  // sudo answered. That says nothing about sudo rights: it is a failed command, as without sudo.
  if (!becameRoot && code !== null) {
    const said = stderr
      .split(prompt)
      .join('')
      .trim()
      .split('\n')
      .filter((l) => l.trim())
      .slice(-3)
      .join('\n');
    throw new SudoError(
      `${ctx.node}: sudo failed for user ${ctx.user}${said ? `: ${said}` : ''}`,
      'the user needs sudo rights on the node (e.g. membership of the sudo group), or connect as root',
    );
  }
  const result: RunResult = { code: code ?? 255, stdout: stdoutBytes.toString('utf8'), stderr, stdoutBytes };
  if (options.check !== false && result.code !== 0) {
    throw new CommandFailedError(ctx.node, command, result.code, result.stdout, result.stderr);
  }
  return result;
}

/** `mkdir -p` + write to a temporary file + chmod/chown + rename, reading the content from stdin. */
export function atomicWriteCommand(path: string, mode: number, owner?: string): string {
  const tmp = `${path}.pifaas-tmp`;
  const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) || '/' : '.';
  return [
    `mkdir -p ${shellQuote(dir)}`,
    `umask 077`,
    `cat > ${shellQuote(tmp)}`,
    `chmod ${mode.toString(8)} ${shellQuote(tmp)}`,
    ...(owner ? [`chown ${shellQuote(owner)} ${shellQuote(tmp)}`] : []),
    `mv -f ${shellQuote(tmp)} ${shellQuote(path)}`,
  ].join(' && ');
}

/** Prints the file, or exits 44 (our "absent" code) when it does not exist. */
export function readFileCommand(path: string): string {
  return `if [ -e ${shellQuote(path)} ]; then cat ${shellQuote(path)}; else exit 44; fi`;
}

export const ABSENT_EXIT_CODE = 44;

/** Turns the result of readFileCommand into the file's bytes (undefined when absent) or an error. */
export function fileContent(node: string, path: string, r: RunResult): Buffer | undefined {
  if (r.code === ABSENT_EXIT_CODE) return undefined;
  if (r.code !== 0) throw new CommandFailedError(node, `cat ${path}`, r.code, '', r.stderr);
  return r.stdoutBytes;
}

export function toReadable(content: string | Buffer): Readable {
  return Readable.from([typeof content === 'string' ? Buffer.from(content) : content]);
}

/**
 * What the SSH and the local operator share: files travel on a command's stdin (so sudo works for
 * root-owned paths) and every command goes through runCommand. A subclass only says how to start a
 * command line and how to reach the Docker socket.
 */
export abstract class CommandOperator implements Operator {
  abstract readonly name: string;
  abstract readonly address: string;
  abstract readonly user: string;
  protected abstract readonly become: BecomeContext;

  /** Starts one command line on the node. */
  protected abstract spawnProcess(commandLine: string): Promise<RawProcess>;
  abstract openDockerSocket(socketPath?: string): Promise<Duplex>;
  abstract reconnect(options?: { retryForMs?: number }): Promise<void>;
  abstract close(): Promise<void>;

  run(command: string, options?: RunOptions): Promise<RunResult> {
    return runCommand((line) => this.spawnProcess(line), this.become, command, options);
  }

  async writeFile(path: string, content: string | Buffer, options: WriteFileOptions = {}): Promise<void> {
    await this.run(atomicWriteCommand(path, options.mode ?? 0o644, options.owner), { sudo: options.sudo, stdin: content });
  }

  async copyFile(localPath: string, remotePath: string, options: WriteFileOptions = {}): Promise<void> {
    await this.run(atomicWriteCommand(remotePath, options.mode ?? 0o644, options.owner), { sudo: options.sudo, stdin: createReadStream(localPath) });
  }

  async readFile(path: string, options: { sudo?: boolean } = {}): Promise<Buffer | undefined> {
    return fileContent(this.name, path, await this.run(readFileCommand(path), { sudo: options.sudo, check: false }));
  }
}
