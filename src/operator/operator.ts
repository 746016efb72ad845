// Why: every remote step of pifaas (provisioning, OpenFaaS, image side-loading, status) talks to a
// node through this one small interface, k3sup-style: run a command (optionally through sudo, with
// stdin and a timeout), write/copy/read a file, open a stream to the node's Docker socket. An SSH
// implementation serves real nodes and the lab; a local one serves "this machine".
import type { Duplex, Readable } from 'node:stream';
import { UserError } from '../user-error.js';

export interface RunOptions {
  /** Run as root: through `sudo` (password fed on stdin when sudo asks) unless already root. */
  sudo?: boolean;
  /** Bytes fed to the command's stdin (a stream is piped); stdin is closed afterwards. */
  stdin?: string | Buffer | Readable;
  /** Kill the command and fail after this many milliseconds (default: no limit). */
  timeoutMs?: number;
  /** Throw CommandFailedError on a non-zero exit (default true). With false, look at `code`. */
  check?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as bytes (readFile and binary output). */
  stdoutBytes: Buffer;
}

export interface WriteFileOptions {
  sudo?: boolean;
  /** File mode, e.g. 0o600 for secrets; default 0o644. */
  mode?: number;
  /** chown owner[:group] after writing (needs sudo unless it is you). */
  owner?: string;
}

export interface Operator {
  /** The node's inventory name (used in every message). */
  readonly name: string;
  /** Address the operator reaches the node at ("local" for the local operator). */
  readonly address: string;
  /** The login user on the node. */
  readonly user: string;
  /** Runs one shell command line (POSIX sh syntax). */
  run(command: string, options?: RunOptions): Promise<RunResult>;
  /** Writes a file atomically (temporary file + rename), creating parent folders. */
  writeFile(path: string, content: string | Buffer, options?: WriteFileOptions): Promise<void>;
  /** Copies a local file to the node (streamed), like writeFile. */
  copyFile(localPath: string, remotePath: string, options?: WriteFileOptions): Promise<void>;
  /** Reads a file; undefined when it does not exist. */
  readFile(path: string, options?: { sudo?: boolean }): Promise<Buffer | undefined>;
  /** A raw byte stream to a unix socket on the node (the Docker API by default). */
  openDockerSocket(socketPath?: string): Promise<Duplex>;
  /**
   * Drops and re-opens the connection (after adding the user to a group, or a reboot; retryForMs:
   * how long to keep trying while the node is down).
   * The local operator does nothing.
   */
  reconnect(options?: { retryForMs?: number }): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/** A command exited non-zero (with check on). The message names the node, the command and its stderr. */
export class CommandFailedError extends UserError {
  constructor(
    readonly node: string,
    readonly command: string,
    readonly code: number,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    const detail = (stderr.trim() || stdout.trim()).split('\n').slice(-6).join('\n');
    super(
      `${node}: \`${summarize(command)}\` failed with exit code ${code}${detail ? `:\n${indent(detail)}` : ''}`,
      'the lines above come from the node; fix the cause there (or in the inventory) and re-run: finished steps are skipped',
    );
  }
}

export class CommandTimeoutError extends UserError {
  constructor(node: string, command: string, timeoutMs: number) {
    super(`${node}: \`${summarize(command)}\` did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped`, 'check the node (load, disk, network) and re-run');
  }
}

/** sudo refused: wrong password, no password given, or the user may not use sudo. */
export class SudoError extends UserError {}

function summarize(command: string): string {
  const oneLine = command.replace(/\s+/g, ' ').trim();
  return oneLine.length > 120 ? `${oneLine.slice(0, 117)}...` : oneLine;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
