// Why: provision, status, push and openfaas install all reach an inventory's hosts over SSH; they share
// one set of flags and one way to turn them into a connector (asking for secrets and unknown host keys
// on a terminal before any parallel work starts).
import { InvalidArgumentError, type Command } from 'commander';
import type { loadInventory } from '../inventory/inventory.js';
import { BECOME_PASSWORD_ENV, InventoryConnector } from '../ssh/inventory-connect.js';
import { canPrompt, promptSecret } from '../ssh/secret-prompt.js';
import { UserError } from '../user-error.js';

export function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number of seconds');
  return n;
}

export interface SshFlags {
  acceptNewHostKeys?: boolean;
  askBecomePass?: boolean;
  connectRetry?: number;
  sshConfig?: string;
}

/** The SSH flags shared by every command that connects to an inventory. */
export function addSshOptions(cmd: Command): Command {
  return cmd
    .option('--accept-new-host-keys', 'record the SSH host keys of hosts not yet in known_hosts (trust on first use); changed keys are always refused')
    .option('-K, --ask-become-pass', `ask for the sudo password once (else: ansible_become_password, $${BECOME_PASSWORD_ENV}, or a prompt when sudo asks)`)
    .option('--connect-retry <seconds>', 'keep retrying unreachable nodes this long (booting, rebooting)', parseSeconds, 60)
    .option('--ssh-config <file>', 'OpenSSH client config to read (default ~/.ssh/config)');
}

/** Builds the connector for a command run: prompts (on a terminal) before any parallel work. */
export async function connectorFor(inventory: Awaited<ReturnType<typeof loadInventory>>, flags: SshFlags, hostsToAsk = inventory.hosts): Promise<InventoryConnector> {
  let becomePassword: string | undefined;
  if (flags.askBecomePass) {
    becomePassword = await promptSecret('sudo password: ');
    if (becomePassword === undefined) throw new UserError('--ask-become-pass needs a terminal to ask on', `set ${BECOME_PASSWORD_ENV} in the environment instead`);
  }
  const connector = new InventoryConnector(inventory, {
    acceptNewHostKeys: flags.acceptNewHostKeys,
    becomePassword,
    connectRetryMs: (flags.connectRetry ?? 60) * 1000,
    sshConfigFile: flags.sshConfig,
  });
  if (!flags.acceptNewHostKeys && canPrompt()) await connector.askUnknownHostKeys(hostsToAsk);
  return connector;
}
