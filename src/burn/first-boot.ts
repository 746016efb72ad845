// Why: every first-boot format (cloud-init, custom.toml, rpi-preseed.toml, NetworkManager keyfiles)
// is generated from this one description of a host, so the formats cannot drift apart: what the
// inventory says about a host is decided here once (user, keys, network, locale), secrets included
// only as hashes or derived keys.
import { pbkdf2Sync } from 'node:crypto';
import { z } from 'zod';

export type Ipv4Setup = { method: 'dhcp' } | { method: 'static'; address: string; gateway?: string; dns: string[] };

export interface WifiSetup {
  ssid: string;
  /** WPA-PSK as 64 hex digits (PBKDF2 of the passphrase, salted with the SSID); never the passphrase. */
  psk: string;
  hidden: boolean;
  ipv4: Ipv4Setup;
}

/** What a host's card must set up on first boot. */
export interface FirstBootConfig {
  hostname: string;
  user: string;
  /** crypt(3) hash ($6$/$y$/$5$); undefined = password login locked (SSH keys only). */
  passwordHash?: string;
  sshAuthorizedKeys: string[];
  /** sshd is always enabled: pifaas provisions over SSH. Password logins only when there is no key. */
  sshPasswordAuth: boolean;
  ethernet: Ipv4Setup;
  wifi?: WifiSetup;
  /** ISO 3166 country for the Wi-Fi regulatory domain. */
  wifiCountry?: string;
  timezone?: string;
  keyboardLayout?: string;
  locale?: string;
}

export const usernameSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'a Linux user name has lowercase letters, digits, "_" and "-" (at most 32, not starting with a digit)');

const SSH_KEY = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( .*)?$/;

/** Whether a line is an OpenSSH public key (type, base64 blob, optional comment). */
export function isSshPublicKey(line: string): boolean {
  return SSH_KEY.test(line.trim());
}

/** WPA2 pre-shared key from a passphrase, as wpa_passphrase(8) computes it. */
export function wpaPsk(ssid: string, passphrase: string): string {
  if (/^[0-9a-fA-F]{64}$/.test(passphrase)) return passphrase.toLowerCase();
  return pbkdf2Sync(Buffer.from(passphrase, 'utf8'), Buffer.from(ssid, 'utf8'), 4096, 32, 'sha1').toString('hex');
}

/** The interface that carries the static address: Wi-Fi when the host uses Wi-Fi, else Ethernet. */
export function staticInterface(cfg: FirstBootConfig): 'eth0' | 'wlan0' | undefined {
  if (cfg.wifi?.ipv4.method === 'static') return 'wlan0';
  if (cfg.ethernet.method === 'static') return 'eth0';
  return undefined;
}

export const FIRST_BOOT_FORMATS = ['cloud-init', 'custom-toml', 'rpi-preseed'] as const;
export type FirstBootFormat = (typeof FIRST_BOOT_FORMATS)[number];

/** Files one format puts on the card, plus what it could not express. */
export interface BootPlan {
  format: FirstBootFormat;
  /** Files in the root of the boot partition (replaced when present). */
  bootFiles: { name: string; content: string }[];
  /** Files in the root partition (absolute paths), root-owned. */
  rootFiles: { path: string; content: string; mode: number }[];
  warnings: string[];
}

/** A TOML basic string. */
export function tomlString(s: string): string {
  let out = '';
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\\' || ch === '"') out += `\\${ch}`;
    else if (code < 0x20 || code === 0x7f) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `"${out}"`;
}

export function tomlArray(items: string[]): string {
  return items.length ? `[\n${items.map((i) => `  ${tomlString(i)},`).join('\n')}\n]` : '[]';
}
