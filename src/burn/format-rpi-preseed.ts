// Why: Raspberry Pi's 2026 first-boot mechanism, rpi-preseed, reads one TOML file,
// rpi-preseed.toml, from the boot partition (see rpi-preseed(5) and its schema, installed on the
// image as /usr/share/rpi-preseed/rpi-preseed.schema). Keys the image's schema does not list are
// ignored there with a warning, so [ethernet] and user.groups are written only when that schema
// knows them; otherwise a static address goes into a NetworkManager keyfile in the root partition.
import { keyfilesFor } from './networkmanager-keyfile.js';
import { tomlArray, tomlString, type BootPlan, type FirstBootConfig } from './first-boot.js';

export interface PreseedTarget {
  /** Keys listed in the image's rpi-preseed.schema (empty when the image has no schema file). */
  schemaKeys: Set<string>;
}

export function rpiPreseedPlan(cfg: FirstBootConfig, target: PreseedTarget): BootPlan {
  const knows = (k: string) => target.schemaKeys.has(k);
  const lines = [
    `# Written by pifaas burn for ${cfg.hostname}. rpi-preseed applies it on first boot and then`,
    '# blanks the secrets in it.',
    'config_version = "1.0"',
    '',
    '[system]',
    `hostname = ${tomlString(cfg.hostname)}`,
    '',
    '[user]',
    `name = ${tomlString(cfg.user)}`,
  ];
  if (cfg.passwordHash) lines.push(`password = ${tomlString(cfg.passwordHash)}`, 'password_encrypted = true');
  lines.push('passwordless_sudo = true');
  if (knows('user.groups')) lines.push('groups = ["sudo"]');
  lines.push(
    '',
    '[ssh]',
    'enabled = true',
    `password_authentication = ${cfg.sshPasswordAuth}`,
    `authorized_keys = ${tomlArray(cfg.sshAuthorizedKeys)}`,
    '',
  );
  const wifiViaToml = cfg.wifi !== undefined && cfg.wifi.ipv4.method === 'dhcp';
  if (wifiViaToml && cfg.wifi) {
    lines.push('[wlan]', `ssid = ${tomlString(cfg.wifi.ssid)}`, `password = ${tomlString(cfg.wifi.psk)}`, 'password_encrypted = true', `hidden = ${cfg.wifi.hidden}`, 'key_mgmt = "wpa-psk"');
    if (cfg.wifiCountry) lines.push(`country = ${tomlString(cfg.wifiCountry)}`);
    lines.push('');
  }
  const ethernetViaToml = cfg.ethernet.method === 'static' && knows('ethernet.method') && knows('ethernet.address');
  if (ethernetViaToml && cfg.ethernet.method === 'static') {
    lines.push('[ethernet]', 'method = "static"', 'interface = "eth0"', `address = ${tomlString(cfg.ethernet.address)}`);
    if (cfg.ethernet.gateway) lines.push(`gateway = ${tomlString(cfg.ethernet.gateway)}`);
    if (cfg.ethernet.dns.length) lines.push(`dns = ${tomlArray(cfg.ethernet.dns)}`);
    lines.push('');
  }
  if (cfg.keyboardLayout || cfg.timezone || cfg.locale) {
    lines.push('[locale]');
    if (cfg.keyboardLayout) lines.push(`keymap = ${tomlString(cfg.keyboardLayout)}`);
    if (cfg.timezone) lines.push(`timezone = ${tomlString(cfg.timezone)}`);
    if (cfg.locale) lines.push(`locales = ${tomlArray([cfg.locale])}`, `lang = ${tomlString(cfg.locale)}`);
    lines.push('');
  }
  const rootFiles = keyfilesFor(cfg, {
    ethernet: cfg.ethernet.method === 'static' && !ethernetViaToml,
    wifi: cfg.wifi !== undefined && !wifiViaToml,
  });
  return { format: 'rpi-preseed', bootFiles: [{ name: 'rpi-preseed.toml', content: lines.join('\n') }], rootFiles, warnings: [] };
}
