// Why: Raspberry Pi OS Bookworm applies first-boot settings from custom.toml on the boot partition
// (raspberrypi-sys-mods' init_config, run by the firstboot init in cmdline.txt), enables sshd when a
// file named `ssh` is there (sshswitch) and sets up the first user from userconf.txt (userconf-pi:
// one line "name:crypt-hash"). custom.toml has no network section, so a static address goes into a
// NetworkManager keyfile in the root partition; a Wi-Fi network with a static address too.
import { keyfilesFor } from './networkmanager-keyfile.js';
import { tomlArray, tomlString, type BootPlan, type FirstBootConfig } from './first-boot.js';

export function customTomlPlan(cfg: FirstBootConfig): BootPlan {
  const warnings: string[] = [];
  const lines = [
    `# Written by pifaas burn for ${cfg.hostname}. Raspberry Pi OS applies it on first boot`,
    '# (raspberrypi-sys-mods init_config) and then deletes it.',
    'config_version = 1',
    '',
    '[system]',
    `hostname = ${tomlString(cfg.hostname)}`,
    '',
    '[user]',
    `name = ${tomlString(cfg.user)}`,
  ];
  if (cfg.passwordHash) lines.push(`password = ${tomlString(cfg.passwordHash)}`, 'password_encrypted = true');
  lines.push(
    '',
    '[ssh]',
    'enabled = true',
    `password_authentication = ${cfg.sshPasswordAuth}`,
    `authorized_keys = ${tomlArray(cfg.sshAuthorizedKeys)}`,
    '',
  );
  // A DHCP Wi-Fi network goes through [wlan] (imager_custom set_wlan writes the NetworkManager
  // connection); a static one needs our own keyfile, which [wlan] cannot express.
  const wifiViaToml = cfg.wifi !== undefined && cfg.wifi.ipv4.method === 'dhcp';
  if (wifiViaToml && cfg.wifi) {
    lines.push('[wlan]', `ssid = ${tomlString(cfg.wifi.ssid)}`, `password = ${tomlString(cfg.wifi.psk)}`, 'password_encrypted = true', `hidden = ${cfg.wifi.hidden}`);
    if (cfg.wifiCountry) lines.push(`country = ${tomlString(cfg.wifiCountry)}`);
    lines.push('');
  }
  if (cfg.keyboardLayout || cfg.timezone) {
    lines.push('[locale]');
    if (cfg.keyboardLayout) lines.push(`keymap = ${tomlString(cfg.keyboardLayout)}`);
    if (cfg.timezone) lines.push(`timezone = ${tomlString(cfg.timezone)}`);
    lines.push('');
  }
  if (cfg.locale) warnings.push(`custom.toml cannot set the locale (${cfg.locale}); it stays the image's default`);
  const bootFiles = [
    { name: 'custom.toml', content: lines.join('\n') },
    { name: 'ssh', content: '' },
  ];
  if (cfg.passwordHash) bootFiles.push({ name: 'userconf.txt', content: `${cfg.user}:${cfg.passwordHash}\n` });
  const rootFiles = keyfilesFor(cfg, {
    ethernet: cfg.ethernet.method === 'static',
    wifi: cfg.wifi !== undefined && !wifiViaToml,
  });
  return { format: 'custom-toml', bootFiles, rootFiles, warnings };
}
