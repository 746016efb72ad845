// Why: Raspberry Pi OS Trixie and Ubuntu for Raspberry Pi configure first boot with cloud-init's
// NoCloud datasource reading user-data, meta-data and network-config from the boot partition. This
// writes those three files the way Raspberry Pi Imager does (user-data must start with
// "#cloud-config" or cloud-init ignores it), with the network as netplan v2 rendered by
// NetworkManager on Raspberry Pi OS and by networkd (netplan's default) on Ubuntu.
import { stringify } from 'yaml';
import type { BootPlan, FirstBootConfig, Ipv4Setup } from './first-boot.js';

export interface CloudInitTarget {
  /** os-release ID: "ubuntu" renders with networkd; anything else (Raspberry Pi OS) with NetworkManager. */
  osId: string;
}

// Raspberry Pi Imager's group list for the first user on Raspberry Pi OS; Ubuntu has no gpio/spi/i2c groups.
const RPI_GROUPS = 'users,adm,dialout,audio,netdev,video,plugdev,cdrom,games,input,gpio,spi,i2c,render,sudo';
const UBUNTU_GROUPS = 'adm,dialout,cdrom,sudo,audio,video,plugdev,netdev';

function netplanIpv4(ip: Ipv4Setup): Record<string, unknown> {
  if (ip.method === 'dhcp') return { dhcp4: true };
  const out: Record<string, unknown> = { dhcp4: false, addresses: [ip.address] };
  if (ip.gateway) out.routes = [{ to: 'default', via: ip.gateway }];
  if (ip.dns.length) out.nameservers = { addresses: ip.dns };
  return out;
}

export function cloudInitPlan(cfg: FirstBootConfig, target: CloudInitTarget): BootPlan {
  const ubuntu = target.osId === 'ubuntu';
  const user: Record<string, unknown> = {
    name: cfg.user,
    groups: ubuntu ? UBUNTU_GROUPS : RPI_GROUPS,
    shell: '/bin/bash',
    lock_passwd: cfg.passwordHash === undefined,
    ...(cfg.passwordHash ? { passwd: cfg.passwordHash } : {}),
    ...(cfg.sshAuthorizedKeys.length ? { ssh_authorized_keys: cfg.sshAuthorizedKeys } : {}),
    sudo: 'ALL=(ALL) NOPASSWD:ALL',
  };
  const userData: Record<string, unknown> = {
    hostname: cfg.hostname,
    manage_etc_hosts: true,
    ...(cfg.timezone ? { timezone: cfg.timezone } : {}),
    ...(cfg.keyboardLayout ? { keyboard: { model: 'pc105', layout: cfg.keyboardLayout } } : {}),
    ...(cfg.locale ? { locale: cfg.locale } : {}),
    users: [user],
    // Raspberry Pi OS ships sshd disabled: its cloud-init enables it for enable_ssh, and runcmd
    // enables it on any image (Ubuntu's is enabled already).
    ...(ubuntu ? {} : { enable_ssh: true }),
    ssh_pwauth: cfg.sshPasswordAuth,
    runcmd: ['systemctl enable --now ssh'],
  };
  const network: Record<string, unknown> = { version: 2 };
  if (!ubuntu) network.renderer = 'NetworkManager';
  network.ethernets = { eth0: { ...netplanIpv4(cfg.ethernet), optional: true } };
  if (cfg.wifi) {
    network.wifis = {
      wlan0: {
        ...netplanIpv4(cfg.wifi.ipv4),
        optional: true,
        ...(cfg.wifiCountry ? { 'regulatory-domain': cfg.wifiCountry } : {}),
        'access-points': { [cfg.wifi.ssid]: { ...(cfg.wifi.hidden ? { hidden: true } : {}), password: cfg.wifi.psk } },
      },
    };
  }
  const header = (what: string) => `# ${what} written by pifaas burn for ${cfg.hostname}; cloud-init (NoCloud) reads it on first boot.\n`;
  // Values double-quoted: netplan and cloud-init read YAML 1.1, where some bare words are not strings.
  const yaml = (v: unknown) => stringify(v, { lineWidth: 0, defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' });
  return {
    format: 'cloud-init',
    bootFiles: [
      { name: 'user-data', content: `#cloud-config\n${header('user-data')}${yaml(userData)}` },
      { name: 'meta-data', content: `${header('meta-data')}${yaml({ 'instance-id': `pifaas-${cfg.hostname}`, 'local-hostname': cfg.hostname, dsmode: 'local' })}` },
      { name: 'network-config', content: `${header('network-config (netplan v2)')}${yaml({ network })}` },
    ],
    rootFiles: [],
    warnings: [],
  };
}
