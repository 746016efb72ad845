// Why: people already describe how to reach their Pis in ~/.ssh/config (aliases, users, ports,
// keys, jump hosts); pifaas honours it like `ssh` and Ansible do. Values from the inventory win
// (Ansible passes them to ssh as options), ~/.ssh/config fills in the rest, then OpenSSH defaults.
import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import path from 'node:path';
import SSHConfig from 'ssh-config';
import { UserError } from '../user-error.js';

/** Everything needed to open one SSH connection (one hop). */
export interface SshTarget {
  /** The name the user wrote (inventory address or ProxyJump entry), for messages. */
  alias: string;
  /** Host name or address actually connected to (HostName). */
  hostname: string;
  port: number;
  user: string;
  /** Key files to try, in order (after the agent). */
  identityFiles: string[];
  /** True when identity files came from the inventory or config (OpenSSH's defaults are tried otherwise). */
  explicitIdentity: boolean;
  /** known_hosts files, first one is written to. */
  knownHostsFiles: string[];
  /** Jump hosts to go through, outermost first. */
  proxyJump: SshTarget[];
}

export interface HostSpec {
  address: string;
  port?: number;
  user?: string;
  privateKeyFile?: string;
  /** Overrides known_hosts files (e.g. the lab's own). */
  knownHostsFile?: string;
}

export interface SshConfigSource {
  /** Parsed config, or undefined when the file does not exist. */
  config?: SSHConfig;
  file: string;
}

export const DEFAULT_IDENTITY_FILES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/** Reads ~/.ssh/config (or another file); a missing file is an empty config. */
export function loadSshConfig(file = path.join(homedir(), '.ssh', 'config')): SshConfigSource {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { file };
    throw new UserError(`cannot read SSH config ${file}: ${(e as Error).message}`);
  }
  try {
    return { config: SSHConfig.parse(text), file };
  } catch (e) {
    throw new UserError(`cannot parse SSH config ${file}: ${(e as Error).message}`, 'check the file with `ssh -G HOST`');
  }
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function all(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** OpenSSH's tokens in IdentityFile / UserKnownHostsFile: ~, %d, %u, %h, %r, %p, %%. */
function expandTokens(p: string, t: { host: string; user: string; port: number }): string {
  const home = homedir();
  let s = p.replace(/%(.)/g, (_, c: string) => {
    switch (c) {
      case 'd':
        return home;
      case 'u':
        return userInfo().username;
      case 'h':
        return t.host;
      case 'r':
        return t.user;
      case 'p':
        return String(t.port);
      case '%':
        return '%';
      default:
        return `%${c}`;
    }
  });
  if (s === '~' || s.startsWith('~/')) s = path.join(home, s.slice(1));
  return s;
}

/** Parses one ProxyJump hop: [user@]host[:port]. */
function parseJump(spec: string): HostSpec {
  const m = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(spec.trim());
  if (!m?.[2]) throw new UserError(`cannot read ProxyJump entry "${spec}"`, 'expected [user@]host[:port], comma-separated');
  return { address: m[2].replace(/^\[|\]$/g, ''), user: m[1], port: m[3] ? Number(m[3]) : undefined };
}

/** Resolves how to reach one host: inventory values first, then ~/.ssh/config, then defaults. */
export function resolveSshTarget(spec: HostSpec, source: SshConfigSource = loadSshConfig(), depth = 0): SshTarget {
  if (depth > 8) throw new UserError(`ProxyJump for ${spec.address} loops (more than 8 hops)`, `check the Host entries of ${source.file}`);
  const computed = source.config ? source.config.compute(spec.address, { ignoreCase: true, matchExec: false }) : {};
  const get = (k: string) => computed[k.toLowerCase()] ?? computed[k];
  const hostname = first(get('HostName'))?.replace(/%h/g, spec.address) ?? spec.address;
  const configPort = first(get('Port'));
  const port = spec.port ?? (configPort ? Number(configPort) : 22);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UserError(`port "${configPort}" for ${spec.address} in ${source.file} is not a port number`);
  }
  const user = spec.user ?? first(get('User')) ?? userInfo().username;
  const tokens = { host: hostname, user, port };
  const configured = [...(spec.privateKeyFile ? [spec.privateKeyFile] : []), ...all(get('IdentityFile')).map((f) => expandTokens(f, tokens))];
  const identityFiles = configured.length ? configured : DEFAULT_IDENTITY_FILES.map((f) => path.join(homedir(), '.ssh', f));
  const knownHostsFiles = spec.knownHostsFile
    ? [spec.knownHostsFile]
    : all(get('UserKnownHostsFile'))
        .flatMap((v) => v.split(/\s+/))
        .filter(Boolean)
        .map((f) => expandTokens(f, tokens));
  const jump = first(get('ProxyJump'));
  const proxyJump =
    jump && jump.toLowerCase() !== 'none'
      ? jump.split(',').map((hop) => resolveSshTarget({ ...parseJump(hop), knownHostsFile: spec.knownHostsFile }, source, depth + 1))
      : [];
  return {
    alias: spec.address,
    hostname,
    port,
    user,
    identityFiles,
    explicitIdentity: configured.length > 0,
    knownHostsFiles: knownHostsFiles.length ? knownHostsFiles : [path.join(homedir(), '.ssh', 'known_hosts')],
    proxyJump,
  };
}
