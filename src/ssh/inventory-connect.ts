// Why: every command that works on the hosts of an inventory (provision, status, OpenFaaS, image
// side-loading) connects to them the same way: inventory values + ~/.ssh/config, known_hosts
// checking with TOFU only when allowed, ssh-agent and key files, and the sudo password from the
// inventory, PIFAAS_BECOME_PASSWORD or a prompt - never argv. This is that one way.
import { homedir } from 'node:os';
import path from 'node:path';
import type { Inventory, InventoryHost } from '../inventory/inventory.js';
import { LocalOperator } from '../operator/local-operator.js';
import type { Operator } from '../operator/operator.js';
import { SshOperator } from '../operator/ssh-operator.js';
import { fingerprintOf, keyTypeOf, type KnownHosts } from './known-hosts.js';
import { knownHostsFor, scanHostKey, type HostKeyInfo } from './ssh-connection.js';
import { loadSshConfig, resolveSshTarget, type SshConfigSource, type SshTarget } from './ssh-config.js';
import { promptSecret, promptYesNo } from './secret-prompt.js';

export const BECOME_PASSWORD_ENV = 'PIFAAS_BECOME_PASSWORD';
export const SSH_PASSPHRASE_ENV = 'PIFAAS_SSH_PASSPHRASE';

export interface InventoryConnectOptions {
  /** Record unknown host keys (--accept-new-host-keys). */
  acceptNewHostKeys?: boolean;
  /** Ask about unknown host keys on the terminal (interactive runs). Default false. */
  askHostKeys?: boolean;
  /**
   * sudo password for hosts whose inventory has none (e.g. from --ask-become-pass); default
   * $PIFAAS_BECOME_PASSWORD. Asked for lazily on the terminal when neither is given and sudo asks.
   */
  becomePassword?: string;
  /** ~/.ssh/config by default. */
  sshConfigFile?: string;
  /** Keep retrying unreachable nodes this long (booting, rebooting). Default 60 s. */
  connectRetryMs?: number;
  /** SSH handshake timeout per attempt. Default 15 s. */
  readyTimeoutMs?: number;
}

/** Connects to the hosts of one inventory; create one per command run and share it. */
export class InventoryConnector {
  private readonly sshConfig: SshConfigSource;
  private readonly knownHostsCache = new Map<string, Promise<KnownHosts>>();
  private promptedPassword?: Promise<string | undefined>;

  constructor(
    readonly inventory: Inventory,
    private readonly options: InventoryConnectOptions = {},
  ) {
    this.sshConfig = loadSshConfig(options.sshConfigFile ?? path.join(homedir(), '.ssh', 'config'));
  }

  /** How a host is reached (after ~/.ssh/config). */
  targetFor(host: InventoryHost): SshTarget {
    const knownHostsFile = host.settings.known_hosts_file
      ? path.resolve(path.dirname(path.resolve(this.inventory.file)), host.settings.known_hosts_file.replace(/^~(?=$|\/)/, homedir()))
      : undefined;
    return resolveSshTarget({ address: host.address, port: host.port, user: host.user, privateKeyFile: host.privateKeyFile, knownHostsFile }, this.sshConfig);
  }

  /** True for hosts the inventory marks `ansible_connection: local`. */
  isLocal(host: InventoryHost): boolean {
    return host.vars.ansible_connection === 'local';
  }

  /** The sudo password for a host: inventory, then the option/env, then (once) the terminal. */
  becomePasswordFor(host: InventoryHost): () => Promise<string | undefined> {
    return async () => {
      if (host.becomePassword !== undefined) return host.becomePassword;
      const given = this.options.becomePassword ?? process.env[BECOME_PASSWORD_ENV];
      if (given !== undefined) return given;
      this.promptedPassword ??= promptSecret(`sudo password (for ${host.user ?? 'the SSH user'} on the nodes): `);
      return this.promptedPassword;
    };
  }

  /** Opens an operator for a host (SSH, or local for ansible_connection=local). */
  async connect(host: InventoryHost, signal?: AbortSignal): Promise<Operator> {
    if (this.isLocal(host)) return new LocalOperator({ name: host.name, becomePassword: this.becomePasswordFor(host) });
    return SshOperator.connect(this.targetFor(host), {
      name: host.name,
      signal,
      retryForMs: this.options.connectRetryMs ?? 60_000,
      readyTimeoutMs: this.options.readyTimeoutMs,
      knownHostsCache: this.knownHostsCache,
      becomePassword: this.becomePasswordFor(host),
      passphrase: async (file) => process.env[SSH_PASSPHRASE_ENV] ?? promptSecret(`passphrase for SSH key ${file}: `),
      hostKeys: {
        acceptNew: this.options.acceptNewHostKeys === true,
        confirm: this.options.askHostKeys ? (info) => confirmHostKey(host.name, info) : undefined,
      },
    });
  }

  /**
   * For interactive runs: reads the host keys of hosts not yet in known_hosts and asks about each
   * on the terminal before any parallel work starts (accepted keys are recorded). Returns the
   * hosts whose keys were not accepted.
   */
  async askUnknownHostKeys(hosts: InventoryHost[]): Promise<string[]> {
    const refused: string[] = [];
    for (const host of hosts) {
      if (this.isLocal(host)) continue;
      const target = this.targetFor(host);
      if (target.proxyJump.length) continue; // checked (and refused if unknown) during the connection
      const known = await knownHostsFor(target, this.knownHostsCache);
      let key: Buffer;
      try {
        key = await scanHostKey(target, this.options.readyTimeoutMs ?? 10_000);
      } catch {
        continue; // unreachable now: the run reports it with retries
      }
      if (known.check(target.hostname, target.port, key).status !== 'unknown') continue;
      const info: HostKeyInfo = { host: target.hostname, port: target.port, keyType: keyTypeOf(key), fingerprint: fingerprintOf(key) };
      if (await confirmHostKey(host.name, info)) await known.add(target.hostname, target.port, key);
      else refused.push(host.name);
    }
    return refused;
  }
}

function confirmHostKey(name: string, info: HostKeyInfo): Promise<boolean> {
  return promptYesNo(
    `The authenticity of host ${name} (${info.host}:${info.port}) can't be established.\n${info.keyType} key fingerprint is ${info.fingerprint}.\nRecord this key and connect?`,
  );
}
