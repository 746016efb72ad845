// Why: one place that opens an SSH connection the way a careful `ssh` does: host keys checked
// against known_hosts (new ones recorded only when allowed, changed ones refused), keys from
// ssh-agent and key files (passphrases asked, never taken from argv), ProxyJump hops, and retries
// with backoff while a node is rebooting or its sshd is not up yet.
import { readFile, stat } from 'node:fs/promises';
import ssh2, { type AnyAuthMethod, type AuthenticationType, type Client as SshClient, type ConnectConfig, type NextAuthHandler } from 'ssh2';

const { Client, utils } = ssh2;
import { UserError } from '../user-error.js';
import { algorithmsForKeyType, fingerprintOf, KnownHosts, keyTypeOf } from './known-hosts.js';
import type { SshTarget } from './ssh-config.js';

export interface HostKeyInfo {
  host: string;
  port: number;
  keyType: string;
  fingerprint: string;
}

export interface HostKeyPolicy {
  /** Record unknown host keys without asking (--accept-new-host-keys). */
  acceptNew: boolean;
  /** Asked about an unknown key when acceptNew is false; true records it. */
  confirm?: (info: HostKeyInfo) => Promise<boolean>;
}

export interface ConnectOptions {
  hostKeys: HostKeyPolicy;
  /** Keep retrying connection failures (refused, unreachable, timeouts) for this long. Default 0. */
  retryForMs?: number;
  /** Handshake timeout for one attempt. Default 15 s. */
  readyTimeoutMs?: number;
  /** Passphrase of an encrypted key file (env or prompt); undefined skips that key. */
  passphrase?: (keyFile: string) => Promise<string | undefined>;
  /** ssh-agent socket; default $SSH_AUTH_SOCK. */
  agentSocket?: string;
  signal?: AbortSignal;
  /** Name used in messages (inventory host name). */
  label?: string;
  /** Cache of loaded known_hosts files (shared by all connections of one run). */
  knownHostsCache?: Map<string, Promise<KnownHosts>>;
}

export class HostKeyError extends UserError {}

/** An open connection and the jump connections under it. */
export interface SshConnection {
  client: SshClient;
  target: SshTarget;
  close(): void;
}

const TRANSIENT = /ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ECONNRESET|EHOSTDOWN|EPIPE|ENOTFOUND|EAI_AGAIN|Timed out while waiting for handshake|Connection lost before handshake|socket hang up|Not connected/;

function isTransient(e: unknown): boolean {
  if (e instanceof UserError && !(e instanceof ConnectFailedError)) return false;
  const err = e as NodeJS.ErrnoException;
  return TRANSIENT.test(`${err.code ?? ''} ${err.message ?? ''}`);
}

/** Could not reach sshd (after retries); the message names the host and the last cause. */
export class ConnectFailedError extends UserError {}

export function knownHostsFor(target: SshTarget, cache?: Map<string, Promise<KnownHosts>>): Promise<KnownHosts> {
  const key = target.knownHostsFiles.join('\0');
  const hit = cache?.get(key);
  if (hit) return hit;
  const loaded = KnownHosts.load(target.knownHostsFiles);
  cache?.set(key, loaded);
  return loaded;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      },
      { once: true },
    );
  });
}

/** Opens a connection to `target` (through its jump hosts), retrying transient failures. */
export async function connectSsh(target: SshTarget, options: ConnectOptions): Promise<SshConnection> {
  const deadline = Date.now() + (options.retryForMs ?? 0);
  let delay = 500;
  for (;;) {
    try {
      return await connectOnce(target, options);
    } catch (e) {
      if (!isTransient(e) || Date.now() + delay > deadline || options.signal?.aborted) {
        if (isTransient(e)) {
          const why = (e as Error).message;
          throw new ConnectFailedError(
            `${options.label ?? target.alias}: cannot reach sshd at ${target.hostname}:${target.port}${target.proxyJump.length ? ` (through ${target.proxyJump.map((j) => j.alias).join(', ')})` : ''}: ${why}`,
            'check that the node is on, on the network, and running sshd; pifaas retries while a node boots (--connect-retry sets for how long)',
            1,
            { cause: e },
          );
        }
        throw e;
      }
      await sleep(delay, options.signal);
      delay = Math.min(delay * 2, 5000);
    }
  }
}

async function connectOnce(target: SshTarget, options: ConnectOptions): Promise<SshConnection> {
  const jumps: SshConnection[] = [];
  let sock: ConnectConfig['sock'];
  try {
    for (const hop of target.proxyJump) {
      const via = jumps.at(-1);
      const hopSock = via ? await forwardOut(via.client, hop.hostname, hop.port) : undefined;
      jumps.push(await handshake(hop, { ...options, label: `${options.label ?? target.alias} (jump host ${hop.alias})` }, hopSock));
    }
    const last = jumps.at(-1);
    if (last) sock = await forwardOut(last.client, target.hostname, target.port);
    const conn = await handshake(target, options, sock);
    return {
      client: conn.client,
      target,
      close: () => {
        conn.client.end();
        for (const j of jumps.reverse()) j.client.end();
      },
    };
  } catch (e) {
    for (const j of jumps) j.client.end();
    throw e;
  }
}

function forwardOut(client: SshClient, host: string, port: number): Promise<NonNullable<ConnectConfig['sock']>> {
  return new Promise((resolve, reject) => {
    client.forwardOut('127.0.0.1', 0, host, port, (err, stream) => (err ? reject(err) : resolve(stream)));
  });
}

async function handshake(target: SshTarget, options: ConnectOptions, sock?: ConnectConfig['sock']): Promise<SshConnection> {
  const label = options.label ?? target.alias;
  const knownHosts = await knownHostsFor(target, options.knownHostsCache);
  const knownTypes = knownHosts.keyTypesFor(target.hostname, target.port);
  let fatal: Error | undefined;
  const tried: string[] = [];
  const auth = await authMethods(target, options, tried);

  const client = new Client();
  const config: ConnectConfig = {
    host: target.hostname,
    port: target.port,
    username: target.user,
    sock,
    readyTimeout: options.readyTimeoutMs ?? 15_000,
    keepaliveInterval: 10_000,
    keepaliveCountMax: 6,
    // Ask for a key type known_hosts already holds, as OpenSSH does, so a known host is never
    // mistaken for a changed one just because another key type was negotiated.
    ...(knownTypes.length ? { algorithms: { serverHostKey: knownTypes.flatMap(algorithmsForKeyType) as never } } : {}),
    hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
      verifyHostKey(label, target, knownHosts, key, options.hostKeys).then(
        () => verify(true),
        (e: Error) => {
          fatal = e;
          verify(false);
        },
      );
    },
    authHandler: (_methodsLeft: AuthenticationType[], _partial: boolean, next: NextAuthHandler) => {
      nextAuthMethod(auth, tried).then(
        (m) => (next as (method: AnyAuthMethod | false) => void)(m),
        (e: unknown) => {
          fatal = e instanceof Error ? e : new Error(String(e));
          client.end();
        },
      );
    },
  };
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      client.end();
      reject(options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted'));
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    client.once('ready', () => {
      options.signal?.removeEventListener('abort', onAbort);
      client.removeAllListeners('error');
      client.on('error', () => {
        /* later errors surface on channels */
      });
      resolve({ client, target, close: () => client.end() });
    });
    client.once('error', (err: Error & { level?: string }) => {
      options.signal?.removeEventListener('abort', onAbort);
      client.end();
      if (fatal) reject(fatal);
      else if (/authentication methods failed/i.test(err.message)) {
        reject(
          new UserError(
            `${label}: SSH login as ${target.user}@${target.hostname}:${target.port} was refused (tried ${tried.length ? tried.join(', ') : 'no key: no ssh-agent and no key file found'})`,
            'check ansible_user and ansible_ssh_private_key_file in the inventory (or User/IdentityFile in ~/.ssh/config), or load the key into ssh-agent',
          ),
        );
      } else reject(err);
    });
    client.once('close', () => {
      if (fatal) reject(fatal);
      else reject(Object.assign(new Error('Connection lost before handshake'), { code: 'ECONNRESET' }));
    });
    client.connect(config);
  });
}

async function verifyHostKey(label: string, target: SshTarget, knownHosts: KnownHosts, key: Buffer, policy: HostKeyPolicy): Promise<void> {
  const status = knownHosts.check(target.hostname, target.port, key);
  const info: HostKeyInfo = { host: target.hostname, port: target.port, keyType: keyTypeOf(key), fingerprint: fingerprintOf(key) };
  const endpoint = `${target.hostname}:${target.port}`;
  if (status.status === 'known') return;
  if (status.status === 'revoked') {
    throw new HostKeyError(`${label}: the host key of ${endpoint} is marked @revoked in ${status.file} line ${status.line}; refusing to connect`);
  }
  if (status.status === 'changed') {
    throw new HostKeyError(
      `${label}: the host key of ${endpoint} has CHANGED: it now presents ${info.keyType} ${info.fingerprint}, which does not match the ${status.knownType} key recorded in ${status.file} line ${status.line}. Someone may be intercepting the connection; refusing to connect`,
      `if the node was reinstalled (or its SD card re-burnt), remove the old key with \`ssh-keygen -R '${target.port === 22 ? target.hostname : `[${target.hostname}]:${target.port}`}' -f ${status.file}\` and re-run with --accept-new-host-keys`,
    );
  }
  if (policy.acceptNew || (policy.confirm && (await policy.confirm(info)))) {
    await knownHosts.add(target.hostname, target.port, key);
    return;
  }
  throw new HostKeyError(
    `${label}: the host key of ${endpoint} is not known yet (${info.keyType} ${info.fingerprint})`,
    `compare the fingerprint with the node's (\`ssh-keygen -lf /etc/ssh/ssh_host_${info.keyType.replace(/^ssh-|-sha2-nistp\d+$/g, '')}_key.pub\` on it), then re-run with --accept-new-host-keys to record it in ${knownHosts.files[0] ?? 'known_hosts'}`,
  );
}

async function isSocket(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isSocket();
  } catch {
    return false;
  }
}

async function nextAuthMethod(steps: AuthStep[], tried: string[]): Promise<AnyAuthMethod | false> {
  for (let step = steps.shift(); step; step = steps.shift()) {
    const m = await step();
    if (m) {
      tried.push(m.type === 'agent' ? 'ssh-agent' : (m.label ?? m.type));
      const { label: _label, ...method } = m;
      return method as AnyAuthMethod;
    }
  }
  return false;
}

type AuthStep = () => Promise<(AnyAuthMethod & { label?: string }) | undefined>;

/** The authentication attempts, in OpenSSH's order: agent keys, then key files. */
async function authMethods(target: SshTarget, options: ConnectOptions, tried: string[]): Promise<AuthStep[]> {
  const steps: AuthStep[] = [];
  const agent = options.agentSocket ?? process.env.SSH_AUTH_SOCK;
  // A stale SSH_AUTH_SOCK (agent gone) is skipped like OpenSSH does, not a fatal error.
  if (agent && (await isSocket(agent))) steps.push(async () => ({ type: 'agent', username: target.user, agent }));
  for (const file of target.identityFiles) {
    steps.push(async () => {
      let data: Buffer;
      try {
        data = await readFile(file);
      } catch (e) {
        if (target.explicitIdentity) tried.push(`${file} (cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        return undefined;
      }
      let parsed = utils.parseKey(data);
      if (parsed instanceof Error && /passphrase|encrypted/i.test(parsed.message)) {
        const passphrase = await options.passphrase?.(file);
        if (passphrase === undefined) {
          tried.push(`${file} (encrypted; no passphrase given: set PIFAAS_SSH_PASSPHRASE or load it into ssh-agent)`);
          return undefined;
        }
        parsed = utils.parseKey(data, passphrase);
        if (parsed instanceof Error) {
          throw new UserError(`the passphrase for SSH key ${file} is wrong`, 'check PIFAAS_SSH_PASSPHRASE (or what was typed), or load the key into ssh-agent');
        }
      }
      if (parsed instanceof Error) {
        tried.push(`${file} (not a private key: ${parsed.message})`);
        return undefined;
      }
      const key = Array.isArray(parsed) ? parsed[0] : parsed;
      return { type: 'publickey', username: target.user, key, label: file };
    });
  }
  return steps;
}

/** Reads a host's key without logging in (for asking the user before a run; like ssh-keyscan). */
export function scanHostKey(target: SshTarget, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let key: Buffer | undefined;
    client.on('error', (e) => (key ? resolve(key) : reject(e)));
    client.on('close', () => (key ? resolve(key) : reject(new Error('connection closed before the host key was seen'))));
    client.connect({
      host: target.hostname,
      port: target.port,
      username: target.user,
      readyTimeout: timeoutMs,
      hostVerifier: (k: Buffer) => {
        key = k;
        return false;
      },
    });
  });
}
