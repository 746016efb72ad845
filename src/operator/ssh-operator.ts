// Why: the Operator for a real node (a Pi, a VM, a lab node): commands run over one ssh2
// connection, files travel on the command's stdin (so sudo works for root-owned paths), and the
// Docker API is reached by forwarding the node's unix socket over the same connection
// (openssh_forwardOutStreamLocal) - the Docker API is never exposed on TCP.
import type { Duplex } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { connectSsh, type ConnectOptions, type SshConnection } from '../ssh/ssh-connection.js';
import type { SshTarget } from '../ssh/ssh-config.js';
import { UserError } from '../user-error.js';
import { CommandOperator, type BecomeContext, type RawProcess } from './command-runner.js';
import { DEFAULT_DOCKER_SOCKET } from './operator.js';

export interface SshOperatorOptions extends ConnectOptions {
  /** Inventory name of the node (messages). */
  name: string;
  /** sudo password source; asked only when sudo prompts. */
  becomePassword?: () => Promise<string | undefined>;
}

export class SshOperator extends CommandOperator {
  readonly name: string;
  readonly address: string;
  readonly user: string;
  protected readonly become: BecomeContext;

  private constructor(
    readonly target: SshTarget,
    private connection: SshConnection,
    private readonly options: SshOperatorOptions,
  ) {
    super();
    this.name = options.name;
    this.address = target.hostname;
    this.user = target.user;
    this.become = { node: options.name, user: target.user, isRoot: target.user === 'root', becomePassword: options.becomePassword };
  }

  /** Connects (retrying while the node boots, per options.retryForMs). */
  static async connect(target: SshTarget, options: SshOperatorOptions): Promise<SshOperator> {
    const connection = await connectSsh(target, { ...options, label: options.label ?? options.name });
    return new SshOperator(target, connection, options);
  }

  openDockerSocket(socketPath = DEFAULT_DOCKER_SOCKET): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      this.connection.client.openssh_forwardOutStreamLocal(socketPath, (err, stream) => {
        if (err) {
          reject(
            new UserError(
              `${this.name}: cannot open ${socketPath} over SSH as ${this.user} (${err.message})`,
              `Docker must be running on the node and ${this.user} must be allowed to use it (root, or a member of the docker group: \`pifaas provision\` adds it); sshd must allow stream-local forwarding (AllowStreamLocalForwarding, DisableForwarding)`,
            ),
          );
        } else resolve(stream);
      });
    });
  }

  async reconnect(options: { retryForMs?: number } = {}): Promise<void> {
    this.connection.close();
    this.connection = await connectSsh(this.target, { ...this.options, ...options, label: this.options.label ?? this.name });
  }

  async close(): Promise<void> {
    this.connection.close();
  }

  protected spawnProcess(commandLine: string): Promise<RawProcess> {
    return new Promise((resolve, reject) => {
      this.connection.client.exec(commandLine, (err, channel: ClientChannel) => {
        if (err) {
          reject(new UserError(`${this.name}: cannot start a command over SSH: ${err.message}`, 'the connection to the node was lost; re-run'));
          return;
        }
        let code: number | null = null;
        channel.on('exit', (c: number | null) => {
          code = typeof c === 'number' ? c : null;
        });
        const exited = new Promise<number | null>((res) => channel.once('close', () => res(code)));
        resolve({
          stdin: channel,
          stdout: channel,
          stderr: channel.stderr,
          exited,
          kill: () => {
            try {
              channel.signal('KILL');
            } catch {
              /* sshd may not support signals */
            }
            channel.close();
          },
        });
      });
    });
  }
}
