// Builds small SD-card images with the real layouts of Raspberry Pi OS releases, with Debian's own
// tools (sfdisk, mkfs.vfat, mtools, mkfs.ext4 -d): an MBR with a FAT32 boot partition at sector
// 8192 (type 0c, label bootfs) and an ext4 root partition (type 83, label rootfs). Each release gets
// the boot files it ships and the root-partition files the first-boot detection looks at. Firmware
// blobs are stand-ins (random bytes of a few KB); text files are the releases' own. Also has the
// independent readers the tests check results with (mtools, debugfs, fsck).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export type Release = 'bookworm' | 'trixie' | 'preseed2026' | 'ubuntu' | 'unknown';

const SECTOR = 512;
export const BOOT_START = 8192;
const BOOT_SECTORS = 131072; // 64 MiB
const ROOT_SECTORS = 65536; // 32 MiB
export const ROOT_START = BOOT_START + BOOT_SECTORS;
export const BOOT_OFFSET = BOOT_START * SECTOR;
export const ROOT_OFFSET = ROOT_START * SECTOR;
const DISK_ID = '5e3da3da';

function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

// Bookworm 2024-11-19 Lite: the firstboot init applies custom.toml and resizes the root partition.
const BOOKWORM_CMDLINE = `console=serial0,115200 console=tty1 root=PARTUUID=${DISK_ID}-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n`;
// Trixie 2025-10-01: resizing moved to the initramfs; cloud-init does the rest.
const TRIXIE_CMDLINE = `console=serial0,115200 console=tty1 root=PARTUUID=${DISK_ID}-02 rootfstype=ext4 fsck.repair=yes rootwait quiet splash plymouth.ignore-serial-consoles\n`;
const UBUNTU_CMDLINE = 'console=serial0,115200 dwc_otg.lpm_enable=0 console=tty1 root=LABEL=writable rootfstype=ext4 rootwait fixrtc quiet splash\n';

const CONFIG_TXT = `# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Automatically load overlays for detected cameras
camera_auto_detect=1

# Automatically load overlays for detected DSI displays
display_auto_detect=1

# Automatically load initramfs files, if found
auto_initramfs=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Don't have the firmware create an initial video= setting in cmdline.txt.
# Use the kernel's default instead.
disable_fw_kms_setup=1

# Run in 64-bit mode
arm_64bit=1

# Disable compensation for displays with overscan
disable_overscan=1

# Run as fast as firmware / board allows
arm_boost=1

[cm4]
# Enable host mode on the 2711 built-in XHCI USB controller.
otg_mode=1

[all]
`;

// pi-gen stage2/04-cloud-init/files (the defaults Trixie ships on the boot partition), abridged comments.
const TRIXIE_USER_DATA = `#cloud-config

# This is the user-data configuration file for cloud-init. By default this sets
# up an initial user called "ubuntu" with password "ubuntu", which must be
# changed at first login. However, many additional actions can be initiated on
# first boot from this file. The cloud-init documentation has more details:
#
# https://cloudinit.readthedocs.io/

# Controls password authentication with the SSH daemon
ssh_pwauth: false
`;
const TRIXIE_META_DATA = `# This is the meta-data configuration file for cloud-init. Please refer to the
# cloud-init documentation for more information:
#
# https://cloudinit.readthedocs.io/
dsmode: local
instance_id: rpios-image
`;
const TRIXIE_NETWORK_CONFIG = `# This file contains a netplan-compatible configuration which cloud-init will
# apply on first-boot (note: it will *not* update the config after the first
# boot).
network:
  version: 2

  ethernets:
    eth0:
      dhcp4: true
      optional: true
`;

const PRESEED_SCHEMA = `# rpi-preseed schema — single source of truth for known keys.
config_version                  string                                          plain   required
system.hostname                 string                                          pii
user.name                       string                                          pii
user.password                   string                                          secret
user.password_encrypted         bool                                            plain
user.passwordless_sudo          bool                                            plain
user.groups                     array                                           plain
ssh.enabled                     bool                                            plain
ssh.password_authentication     bool                                            plain
ssh.ssh_import_id               array                                           pii
ssh.authorized_keys             array                                           pii
wlan.ssid                       string                                          pii
wlan.password                   string                                          secret
wlan.password_encrypted         bool                                            plain
wlan.hidden                     bool                                            plain
wlan.country                    string                                          plain
wlan.key_mgmt                   enum:none,owe,wpa-psk,sae                       plain
ethernet.method                 enum:dhcp,static,disabled                       plain
ethernet.interface              string                                          plain
ethernet.address                string                                          pii
ethernet.gateway                string                                          pii
ethernet.dns                    array                                           plain
locale.keymap                   string                                          plain
locale.timezone                 string                                          plain
locale.locales                  array                                           plain
locale.lang                     string                                          plain
`;

function osRelease(release: Release): string {
  switch (release) {
    case 'bookworm':
      return 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL="https://www.debian.org/"\n';
    case 'trixie':
    case 'preseed2026':
      return 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\nVERSION_ID="13"\nVERSION="13 (trixie)"\nVERSION_CODENAME=trixie\nDEBIAN_VERSION_FULL=13.1\nID=debian\nHOME_URL="https://www.debian.org/"\n';
    case 'ubuntu':
      return 'PRETTY_NAME="Ubuntu 24.04.3 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION="24.04.3 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\n';
    case 'unknown':
      return 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nVERSION_CODENAME=bullseye\nID=debian\n';
  }
}

function bootFiles(release: Release): Record<string, string | Buffer> {
  const blob = (n: number) => randomBytes(n);
  const files: Record<string, string | Buffer> = {
    'bootcode.bin': blob(5000),
    'start4.elf': blob(9000),
    'fixup4.dat': blob(3000),
    'bcm2711-rpi-4-b.dtb': blob(4000),
    'kernel8.img': blob(20000),
    'config.txt': CONFIG_TXT,
  };
  if (release === 'ubuntu') {
    files['cmdline.txt'] = UBUNTU_CMDLINE;
    files['user-data'] = TRIXIE_USER_DATA;
    files['meta-data'] = 'instance-id: cloud-image\n';
    files['network-config'] = TRIXIE_NETWORK_CONFIG;
    files['README'] = 'This file belongs to the boot partition of the Ubuntu Server for Raspberry Pi.\n';
    return files;
  }
  files['initramfs8'] = blob(8000);
  files['cmdline.txt'] = release === 'bookworm' || release === 'unknown' ? BOOKWORM_CMDLINE : TRIXIE_CMDLINE;
  const date = release === 'bookworm' ? '2024-11-19' : release === 'trixie' ? '2025-10-01' : '2026-05-12';
  files['issue.txt'] = `Raspberry Pi reference ${date}\nGenerated using pi-gen, https://github.com/RPi-Distro/pi-gen, 891df1e21ed2b6099a2e6a13e26c91dea44b34d4, stage2\n`;
  if (release === 'trixie') {
    files['user-data'] = TRIXIE_USER_DATA;
    files['meta-data'] = TRIXIE_META_DATA;
    files['network-config'] = TRIXIE_NETWORK_CONFIG;
  }
  return files;
}

function rootFiles(release: Release): Record<string, string> {
  const files: Record<string, string> = {
    'usr/lib/os-release': osRelease(release),
    'etc/hostname': release === 'ubuntu' ? 'ubuntu\n' : 'raspberrypi\n',
    'etc/passwd': 'root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n',
  };
  if (release === 'unknown') return files;
  files['usr/sbin/NetworkManager'] = '#!/bin/sh\n# stand-in\n';
  if (release !== 'ubuntu') {
    files['usr/lib/raspberrypi-sys-mods/imager_custom'] = '#!/bin/sh\n# stand-in for raspberrypi-sys-mods\n';
    files['usr/lib/userconf-pi/userconf'] = '#!/bin/sh\n# stand-in for userconf-pi\n';
  }
  if (release === 'bookworm') {
    files['usr/lib/raspberrypi-sys-mods/init_config'] = '#!/usr/bin/env python3\n# stand-in: reads /boot/firmware/custom.toml\n';
    files['usr/lib/raspberrypi-sys-mods/firstboot'] = '#!/bin/bash\n# stand-in\n';
  }
  if (release === 'trixie' || release === 'ubuntu') {
    files['usr/bin/cloud-init'] = '#!/usr/bin/python3\n# stand-in\n';
    files['etc/cloud/cloud.cfg'] = 'datasource_list: [ NoCloud, None ]\n';
  }
  if (release === 'trixie') {
    files['etc/cloud/cloud.cfg.d/99_raspberry-pi.cfg'] = 'datasource_list: [ NoCloud, None ]\ndatasource:\n  NoCloud:\n    seedfrom: file:///boot/firmware\n';
    files['lib/netplan/00-network-manager-all.yaml'] = 'network:\n  version: 2\n  renderer: NetworkManager\n';
  }
  if (release === 'preseed2026') {
    files['usr/lib/rpi-preseed/rpi-preseed'] = '#!/bin/sh\n# stand-in for rpi-preseed\n';
    files['usr/share/rpi-preseed/rpi-preseed.schema'] = PRESEED_SCHEMA;
    files['usr/lib/systemd/system/rpi-preseed.service'] = '[Unit]\nDescription=rpi-preseed\n';
  }
  return files;
}

/** Builds `<dir>/<release>.img` and returns its path. */
export function buildReleaseImage(release: Release, dir: string): string {
  const work = mkdtempSync(path.join(tmpdir(), `pifaas-img-${release}-`));
  try {
    const img = path.join(dir, `${release}.img`);
    run('truncate', ['-s', String((ROOT_START + ROOT_SECTORS) * SECTOR), img]);
    run('sfdisk', ['-q', img], `label: dos\nlabel-id: 0x${DISK_ID}\nstart=${BOOT_START}, size=${BOOT_SECTORS}, type=c\nstart=${ROOT_START}, size=${ROOT_SECTORS}, type=83\n`);

    const boot = path.join(work, 'boot.part');
    run('mkfs.vfat', ['-F', '32', '-n', release === 'ubuntu' ? 'system-boot' : 'bootfs', '-C', boot, String(BOOT_SECTORS / 2)]);
    const bootDir = path.join(work, 'bootfiles');
    mkdirSync(bootDir);
    for (const [name, content] of Object.entries(bootFiles(release))) writeFileSync(path.join(bootDir, name), content);
    run('mcopy', ['-i', boot, ...Object.keys(bootFiles(release)).map((n) => path.join(bootDir, n)), '::/']);
    run('mmd', ['-i', boot, '::/overlays']);
    writeFileSync(path.join(bootDir, 'README'), 'Overlays README\n');
    run('mcopy', ['-i', boot, path.join(bootDir, 'README'), '::/overlays/README']);

    const rootDir = path.join(work, 'root');
    for (const [p, content] of Object.entries(rootFiles(release))) {
      mkdirSync(path.dirname(path.join(rootDir, p)), { recursive: true });
      writeFileSync(path.join(rootDir, p), content);
    }
    mkdirSync(path.join(rootDir, 'etc/NetworkManager/system-connections'), { recursive: true });
    symlinkSync('../usr/lib/os-release', path.join(rootDir, 'etc/os-release'));
    const root = path.join(work, 'root.part');
    run('truncate', ['-s', String(ROOT_SECTORS * SECTOR), root]);
    run('mkfs.ext4', ['-q', '-F', '-L', release === 'ubuntu' ? 'writable' : 'rootfs', '-E', 'root_owner=0:0', '-d', rootDir, root]);

    run('dd', [`if=${boot}`, `of=${img}`, 'bs=1M', `seek=${BOOT_OFFSET}`, 'oflag=seek_bytes', 'conv=notrunc', 'status=none']);
    run('dd', [`if=${root}`, `of=${img}`, 'bs=1M', `seek=${ROOT_OFFSET}`, 'oflag=seek_bytes', 'conv=notrunc', 'status=none']);
    return img;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

// ---- independent readers ----

/** Lists the boot partition's root directory with mtools: name -> size. */
export function mtoolsList(img: string): Map<string, number> {
  const out = run('mdir', ['-b', '-i', `${img}@@${BOOT_OFFSET}`, '::/']);
  const sizes = new Map<string, number>();
  for (const line of out.split('\n').filter(Boolean)) {
    const name = line.replace(/^::\//, '').replace(/\/$/, '');
    sizes.set(name, -1);
  }
  return sizes;
}

export function mtoolsRead(img: string, name: string): string {
  return execFileSync('mtype', ['-i', `${img}@@${BOOT_OFFSET}`, `::/${name}`], { encoding: 'latin1' });
}

export function mtoolsReadBytes(img: string, name: string): Buffer {
  return execFileSync('mcopy', ['-n', '-i', `${img}@@${BOOT_OFFSET}`, `::/${name}`, '-']);
}

/** fsck.vfat -n on the boot partition: returns its output; throws when it found errors. */
export function fsckBoot(img: string, dir: string): string {
  const part = path.join(dir, 'fsck-boot.part');
  run('dd', [`if=${img}`, `of=${part}`, 'bs=1M', `skip=${BOOT_OFFSET}`, `count=${BOOT_SECTORS * SECTOR}`, 'iflag=skip_bytes,count_bytes', 'status=none']);
  try {
    return run('fsck.vfat', ['-n', part]);
  } finally {
    rmSync(part, { force: true });
  }
}

/** e2fsck -fn on the root partition; throws when it found errors. */
export function fsckRoot(img: string, dir: string): string {
  const part = path.join(dir, 'fsck-root.part');
  run('dd', [`if=${img}`, `of=${part}`, 'bs=1M', `skip=${ROOT_OFFSET}`, 'iflag=skip_bytes', 'status=none']);
  try {
    return run('e2fsck', ['-fn', part]);
  } finally {
    rmSync(part, { force: true });
  }
}

/** debugfs: file content from the root partition (undefined when absent). */
export function debugfsCat(img: string, p: string): string | undefined {
  try {
    return execFileSync('debugfs', ['-R', `cat ${p}`, `${img}?offset=${ROOT_OFFSET}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return undefined;
  }
}

/** debugfs stat: mode (octal string), uid and gid of a root-partition file. */
export function debugfsStat(img: string, p: string): { mode: string; uid: number; gid: number } {
  const out = execFileSync('debugfs', ['-R', `stat ${p}`, `${img}?offset=${ROOT_OFFSET}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const mode = /Mode:\s+(\d+)/.exec(out)?.[1] ?? '';
  const uid = Number(/User:\s+(\d+)/.exec(out)?.[1]);
  const gid = Number(/Group:\s+(\d+)/.exec(out)?.[1]);
  return { mode, uid, gid };
}

/** debugfs ls -p of a root-partition directory: names. */
export function debugfsLs(img: string, p: string): string[] {
  const out = execFileSync('debugfs', ['-R', `ls -p ${p}`, `${img}?offset=${ROOT_OFFSET}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return out
    .split('\n')
    .map((l) => l.split('/')[5])
    .filter((n): n is string => !!n && n !== '.' && n !== '..');
}
