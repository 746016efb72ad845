// Why: turns an inventory host (its pifaas_ settings and ansible_user) plus the secrets given at run
// time into the FirstBootConfig every format is generated from. Secrets never come from argv: the
// user password from pifaas_password_hash, PIFAAS_USER_PASSWORD or a prompt (then hashed with
// `openssl passwd -6 -stdin`, the password on stdin), the Wi-Fi passphrase from
// pifaas_wifi_password, PIFAAS_WIFI_PASSWORD or a prompt (then turned into the WPA PSK).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { UserError } from '../user-error.js';
import type { InventoryHost } from '../inventory/inventory.js';
import { hostnameSchema } from '../inventory/pifaas-settings.js';
import { isSshPublicKey, usernameSchema, wpaPsk, type FirstBootConfig, type Ipv4Setup } from './first-boot.js';

export interface SecretSource {
  /** Asks for a secret without echo; undefined when there is no terminal to ask on. */
  ask?: (prompt: string) => Promise<string>;
  env: NodeJS.ProcessEnv;
}

/** SHA-512 crypt hash of a password via `openssl passwd -6 -stdin` (never in argv). */
export async function hashPassword(password: string): Promise<string> {
  if (!password) throw new UserError('the user password is empty', 'set a password or use SSH keys only (pifaas_ssh_public_keys)');
  return new Promise((resolve, reject) => {
    const child = execFile('openssl', ['passwd', '-6', '-stdin'], (err, stdout) => {
      if (err) reject(new UserError('could not hash the password with openssl', 'install openssl, or put a hash in pifaas_password_hash'));
      else resolve(stdout.trim());
    });
    child.stdin?.end(`${password}\n`);
  });
}

async function readKeys(entries: string[], inventoryDir: string, host: string): Promise<string[]> {
  const keys: string[] = [];
  for (const entry of entries) {
    if (isSshPublicKey(entry)) {
      keys.push(entry.trim());
      continue;
    }
    const file = entry === '~' || entry.startsWith('~/') ? path.join(homedir(), entry.slice(1)) : path.resolve(inventoryDir, entry);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      throw new UserError(
        `pifaas_ssh_public_keys of host "${host}": ${entry} is neither an SSH public key nor a readable file (${file})`,
        'give the key text ("ssh-ed25519 AAAA...") or the path of a .pub file; make one with ssh-keygen -t ed25519',
      );
    }
    const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const bad = lines.find((l) => !isSshPublicKey(l));
    if (bad !== undefined || lines.length === 0) {
      throw new UserError(`${file} (pifaas_ssh_public_keys of host "${host}") does not hold SSH public keys`, 'point at the .pub file, never the private key');
    }
    keys.push(...lines);
  }
  return [...new Set(keys)];
}

/** Secrets asked once per run and reused for every host that needs them. */
export class SecretCache {
  private passwordHash?: Promise<string>;
  private wifiPassphrases = new Map<string, Promise<string>>();

  constructor(private readonly source: SecretSource) {}

  userPasswordHash(required: boolean, host: string): Promise<string> | undefined {
    if (this.passwordHash) return this.passwordHash;
    const fromEnv = this.source.env.PIFAAS_USER_PASSWORD;
    if (fromEnv) return (this.passwordHash = hashPassword(fromEnv));
    if (!required) return undefined;
    if (!this.source.ask) {
      throw new UserError(
        `host "${host}" has no SSH key and no password, so nobody could log in`,
        'set pifaas_ssh_public_keys, or PIFAAS_USER_PASSWORD in the environment, or pifaas_password_hash (openssl passwd -6), or run on a terminal to be asked',
      );
    }
    const ask = this.source.ask;
    this.passwordHash = (async () => {
      const a = await ask('Password for the user on the cards: ');
      const b = await ask('Same password again: ');
      if (a !== b) throw new UserError('the two passwords differ', 'run pifaas burn again');
      return hashPassword(a);
    })();
    return this.passwordHash;
  }

  wifiPassphrase(ssid: string, host: string): Promise<string> {
    const cached = this.wifiPassphrases.get(ssid);
    if (cached) return cached;
    const fromEnv = this.source.env.PIFAAS_WIFI_PASSWORD;
    let p: Promise<string>;
    if (fromEnv) p = Promise.resolve(fromEnv);
    else if (this.source.ask) p = this.source.ask(`Wi-Fi passphrase for "${ssid}": `);
    else {
      throw new UserError(
        `host "${host}" joins Wi-Fi "${ssid}" but no passphrase was given`,
        'set PIFAAS_WIFI_PASSWORD in the environment or run on a terminal to be asked',
      );
    }
    this.wifiPassphrases.set(ssid, p);
    return p;
  }
}

function checkPassphrase(pass: string, ssid: string): void {
  const len = Buffer.byteLength(pass, 'utf8');
  if (!/^[0-9a-fA-F]{64}$/.test(pass) && (len < 8 || len > 63)) {
    throw new UserError(`the Wi-Fi passphrase for "${ssid}" has ${len} bytes; WPA2 needs 8 to 63`, 'check PIFAAS_WIFI_PASSWORD or pifaas_wifi_password');
  }
}

/** The first-boot description of one inventory host. */
export async function hostFirstBootConfig(host: InventoryHost, inventoryFile: string, secrets: SecretCache): Promise<FirstBootConfig> {
  const s = host.settings;
  const user = host.user ?? 'pi';
  const userCheck = usernameSchema.safeParse(user);
  if (!userCheck.success) throw new UserError(`ansible_user "${user}" of host "${host.name}": ${userCheck.error.issues[0]?.message}`);
  const keys = await readKeys(s.ssh_public_keys ?? [], path.dirname(path.resolve(inventoryFile)), host.name);
  const passwordHash = s.password_hash ?? (await secrets.userPasswordHash(keys.length === 0, host.name));

  let ethernet: Ipv4Setup = { method: 'dhcp' };
  let wifiIpv4: Ipv4Setup = { method: 'dhcp' };
  if (s.static_ip) {
    const ip: Ipv4Setup = { method: 'static', address: s.static_ip, gateway: s.gateway, dns: s.dns ?? (s.gateway ? [s.gateway] : []) };
    if (s.wifi_ssid) wifiIpv4 = ip;
    else ethernet = ip;
  }
  let wifi: FirstBootConfig['wifi'];
  if (s.wifi_ssid) {
    if (!s.wifi_country) {
      throw new UserError(`host "${host.name}" joins Wi-Fi but has no pifaas_wifi_country`, 'Wi-Fi stays off until the regulatory country is set: add pifaas_wifi_country: GB (your two-letter country code)');
    }
    const pass = s.wifi_password ?? (await secrets.wifiPassphrase(s.wifi_ssid, host.name));
    checkPassphrase(pass, s.wifi_ssid);
    wifi = { ssid: s.wifi_ssid, psk: wpaPsk(s.wifi_ssid, pass), hidden: s.wifi_hidden ?? false, ipv4: wifiIpv4 };
  }
  const hostname = s.hostname ?? host.name;
  const hostCheck = hostnameSchema.safeParse(hostname);
  if (!hostCheck.success) {
    throw new UserError(`host "${host.name}" cannot be used as a host name: ${hostCheck.error.issues[0]?.message}`, 'set pifaas_hostname for it');
  }
  return {
    hostname,
    user,
    passwordHash,
    sshAuthorizedKeys: keys,
    sshPasswordAuth: keys.length === 0,
    ethernet,
    wifi,
    wifiCountry: s.wifi_country,
    timezone: s.timezone,
    keyboardLayout: s.keyboard_layout,
    locale: s.locale,
  };
}
