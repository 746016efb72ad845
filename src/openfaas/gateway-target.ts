// Why: deploy, ls, rm, invoke and logs all pick their gateway the same way (--gateway, a stack.yml
// gateway, OPENFAAS_URL, the inventory's manager, the default) and use the credentials saved for it;
// this is that one way, shared so the commands cannot drift apart.
import { access } from 'node:fs/promises';
import { loadInventory } from '../inventory/inventory.js';
import { connectGateway } from './credentials.js';
import type { GatewayClient } from './gateway-client.js';
import { inventoryGatewayUrl } from './manager-docker.js';
import { loadStackFile, type StackFile } from './stack-file.js';

export const DEFAULT_STACK_FILE = 'stack.yml';

export interface GatewayFlags {
  gateway?: string;
  /** -f: the stack file (its provider.gateway counts); stack.yml in the current folder by default. */
  yaml?: string;
  inventory?: string;
  /** --ssh-config: resolves an inventory that names its hosts by SSH config aliases. */
  sshConfig?: string;
}

/** The stack file named by -f, or ./stack.yml when it exists (undefined otherwise). */
export async function optionalStackFile(yaml: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<StackFile | undefined> {
  if (yaml) return loadStackFile(yaml, env);
  try {
    await access(DEFAULT_STACK_FILE);
  } catch {
    return undefined;
  }
  return loadStackFile(DEFAULT_STACK_FILE, env);
}

export async function gatewayFromFlags(flags: GatewayFlags, stack?: StackFile, env: NodeJS.ProcessEnv = process.env): Promise<GatewayClient> {
  const inventoryGateway = flags.inventory ? inventoryGatewayUrl(await loadInventory(flags.inventory), flags.sshConfig) : undefined;
  return connectGateway({ flag: flags.gateway, stackGateway: stack?.provider.gateway, inventoryGateway, env });
}
