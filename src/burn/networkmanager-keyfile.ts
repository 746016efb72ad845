// Why: Raspberry Pi OS (Bookworm and later) runs NetworkManager, not dhcpcd. When a first-boot
// format cannot express a static address (custom.toml has no network section; older rpi-preseed has
// no [ethernet]), pifaas writes a NetworkManager keyfile straight into the root partition. NM only
// loads keyfiles that are root-owned with mode 0600, which is also what the Wi-Fi key needs.
import { createHash } from 'node:crypto';
import type { FirstBootConfig, Ipv4Setup, WifiSetup } from './first-boot.js';

export const NM_CONNECTIONS_DIR = '/etc/NetworkManager/system-connections';

/** A stable UUID (v5-style, from a SHA-1 of the name) so a re-burn writes identical files. */
function stableUuid(name: string): string {
  const h = createHash('sha1').update(`pifaas:${name}`).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** SSIDs with characters a keyfile string cannot hold are written as a byte list ("112;105;"). */
function keyfileSsid(ssid: string): string {
  if (/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(ssid) && !/[;\\]/.test(ssid)) return ssid;
  return [...Buffer.from(ssid, 'utf8')].map((b) => `${b};`).join('');
}

function ipv4Section(ip: Ipv4Setup): string[] {
  if (ip.method === 'dhcp') return ['[ipv4]', 'method=auto', ''];
  const lines = ['[ipv4]', 'method=manual', `address1=${ip.address}${ip.gateway ? `,${ip.gateway}` : ''}`];
  if (ip.dns.length) lines.push(`dns=${ip.dns.map((d) => `${d};`).join('')}`, 'ignore-auto-dns=true');
  lines.push('');
  return lines;
}

export interface NmKeyfile {
  path: string;
  content: string;
  mode: number;
}

export function ethernetKeyfile(hostname: string, ip: Ipv4Setup): NmKeyfile {
  const id = 'pifaas-eth0';
  const content = [
    `# Written by pifaas burn for ${hostname}.`,
    '[connection]',
    `id=${id}`,
    `uuid=${stableUuid(`${hostname}:eth0`)}`,
    'type=ethernet',
    'interface-name=eth0',
    'autoconnect=true',
    'autoconnect-priority=100',
    '',
    '[ethernet]',
    '',
    ...ipv4Section(ip),
    '[ipv6]',
    'addr-gen-mode=default',
    'method=auto',
    '',
  ].join('\n');
  return { path: `${NM_CONNECTIONS_DIR}/${id}.nmconnection`, content, mode: 0o600 };
}

export function wifiKeyfile(hostname: string, wifi: WifiSetup): NmKeyfile {
  const id = 'pifaas-wlan0';
  const content = [
    `# Written by pifaas burn for ${hostname}.`,
    '[connection]',
    `id=${id}`,
    `uuid=${stableUuid(`${hostname}:wlan0`)}`,
    'type=wifi',
    'interface-name=wlan0',
    'autoconnect=true',
    '',
    '[wifi]',
    'mode=infrastructure',
    `ssid=${keyfileSsid(wifi.ssid)}`,
    `hidden=${wifi.hidden}`,
    '',
    '[wifi-security]',
    'key-mgmt=wpa-psk',
    `psk=${wifi.psk}`,
    '',
    ...ipv4Section(wifi.ipv4),
    '[ipv6]',
    'addr-gen-mode=default',
    'method=auto',
    '',
  ].join('\n');
  return { path: `${NM_CONNECTIONS_DIR}/${id}.nmconnection`, content, mode: 0o600 };
}

/** Keyfiles for whatever the boot-partition format could not carry. */
export function keyfilesFor(cfg: FirstBootConfig, opts: { ethernet: boolean; wifi: boolean }): NmKeyfile[] {
  const out: NmKeyfile[] = [];
  if (opts.ethernet) out.push(ethernetKeyfile(cfg.hostname, cfg.ethernet));
  if (opts.wifi && cfg.wifi) out.push(wifiKeyfile(cfg.hostname, cfg.wifi));
  return out;
}
