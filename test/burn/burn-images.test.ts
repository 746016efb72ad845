// pifaas burn on real image files with the layouts of Raspberry Pi OS Bookworm, Trixie, a 2026
// rpi-preseed image and Ubuntu, written to image-file targets (--output) through etcher-sdk, then
// read back with mtools, debugfs and fsck: every first-boot file and line, the cgroup flags, that
// nothing else on the partitions changed, that no secret is on the card in plain text, and that
// a second burn gives the same card. Also: a flipped byte fails verification; a truncated .xz or
// .gz, a download that breaks off, a URL that is missing or unreachable and an unknown image are
// refused with their own words; no image or card file is left open, written or refused; and the
// pifaas process (run as a user runs it) exits once it has said so.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomFillSync } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sourceDestination } from 'etcher-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { burn, type BurnOptions, type HostBurnResult } from '../../src/burn/burn.js';
import { configureImage } from '../../src/burn/configure-image.js';
import { wpaPsk } from '../../src/burn/first-boot.js';
import { writeImage } from '../../src/burn/image-writer.js';
import { UserError } from '../../src/user-error.js';
import {
  BOOT_OFFSET,
  buildReleaseImage,
  debugfsCat,
  debugfsLs,
  debugfsStat,
  fsckBoot,
  fsckRoot,
  mtoolsList,
  mtoolsRead,
  mtoolsReadBytes,
  type Release,
} from './release-images.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pifaas-burn-'));
const images: Partial<Record<Release, string>> = {};
const PASSWORD = 'Hunter2-pifaas-user';
const WIFI_PASS = 'correct horse battery staple';
let pubKey: string;
let inventory: string;

beforeAll(() => {
  for (const r of ['bookworm', 'trixie', 'preseed2026', 'ubuntu', 'unknown'] as const) images[r] = buildReleaseImage(r, dir);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'admin@pifaas', '-f', path.join(dir, 'id_ed25519')]);
  pubKey = readFileSync(path.join(dir, 'id_ed25519.pub'), 'utf8').trim();
  inventory = path.join(dir, 'inventory.yaml');
  writeFileSync(
    inventory,
    `all:
  vars:
    ansible_user: pi
    pifaas_gateway: 192.168.1.1
    pifaas_dns: [192.168.1.1, 1.1.1.1]
    pifaas_timezone: Europe/London
    pifaas_keyboard_layout: gb
    pifaas_locale: en_GB.UTF-8
    pifaas_wifi_country: GB
    pifaas_ssh_public_keys: [./id_ed25519.pub]
  children:
    managers:
      hosts:
        pi1: { ansible_host: 192.168.1.11, pifaas_static_ip: 192.168.1.11/24 }
    workers:
      hosts:
        pi3: { ansible_host: pi3.local, pifaas_wifi_ssid: pi-cluster }
`,
  );
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function options(over: Partial<BurnOptions>): BurnOptions {
  return {
    inventoryFile: inventory,
    image: images.trixie as string,
    maxSize: 128e9,
    secrets: { env: { PIFAAS_USER_PASSWORD: PASSWORD, PIFAAS_WIFI_PASSWORD: WIFI_PASS } },
    ui: { confirm: async () => false, progress: () => {}, info: () => {} },
    ...over,
  };
}

async function burnTo(release: Release, out: string, over: Partial<BurnOptions> = {}): Promise<HostBurnResult[]> {
  return burn(options({ image: images[release] as string, outputDir: path.join(dir, out), ...over }));
}

const CGROUP = 'cgroup_enable=memory cgroup_memory=1';

/** Every boot file of the source image other than `changed` is byte-identical in the output. */
function assertOtherBootFilesUnchanged(source: string, output: string, changed: string[]): void {
  const before = [...mtoolsList(source).keys()];
  const after = [...mtoolsList(output).keys()];
  const added = after.filter((n) => !before.includes(n));
  expect(added.every((n) => changed.includes(n))).toBe(true);
  for (const name of before) {
    if (changed.includes(name) || name === 'overlays') continue;
    expect(mtoolsReadBytes(output, name).equals(mtoolsReadBytes(source, name)), `${name} unchanged`).toBe(true);
  }
  expect(mtoolsRead(output, 'overlays/README')).toBe(mtoolsRead(source, 'overlays/README'));
}

function assertNoPlainSecrets(img: string): void {
  const bytes = readFileSync(img);
  expect(bytes.includes(Buffer.from(PASSWORD))).toBe(false);
  expect(bytes.includes(Buffer.from(WIFI_PASS))).toBe(false);
}

function cmdlineOf(img: string): string {
  const c = mtoolsRead(img, 'cmdline.txt');
  expect(c.endsWith('\n')).toBe(true);
  expect(c.trimEnd().split('\n')).toHaveLength(1);
  expect(c.split('cgroup_enable=memory').length - 1).toBe(1);
  expect(c.split('cgroup_memory=1').length - 1).toBe(1);
  return c.trimEnd();
}

describe('burn to image files: Raspberry Pi OS Trixie (cloud-init NoCloud)', () => {
  let results: HostBurnResult[];
  let pi1: string;
  let pi3: string;
  beforeAll(async () => {
    results = await burnTo('trixie', 'trixie');
    pi1 = path.join(dir, 'trixie', 'pi1.img');
    pi3 = path.join(dir, 'trixie', 'pi3.img');
  });

  it('writes one verified image per host, readable only by its owner', () => {
    expect(results.map((r) => [r.host, r.format, r.verified])).toEqual([
      ['pi1', 'cloud-init', true],
      ['pi3', 'cloud-init', true],
    ]);
    expect(statSync(pi1).mode & 0o777).toBe(0o600);
    expect(statSync(pi1).size).toBe(statSync(images.trixie as string).size);
  });

  it('user-data starts with #cloud-config and sets host, user, hash, keys, ssh, locale', () => {
    const text = mtoolsRead(pi1, 'user-data');
    expect(text.split('\n')[0]).toBe('#cloud-config');
    const ud = parse(text);
    expect(ud.hostname).toBe('pi1');
    expect(ud.manage_etc_hosts).toBe(true);
    expect(ud.timezone).toBe('Europe/London');
    expect(ud.keyboard).toEqual({ model: 'pc105', layout: 'gb' });
    expect(ud.locale).toBe('en_GB.UTF-8');
    expect(ud.enable_ssh).toBe(true);
    expect(ud.ssh_pwauth).toBe(false);
    expect(ud.runcmd).toEqual(['systemctl enable --now ssh']);
    expect(ud.users).toHaveLength(1);
    const u = ud.users[0];
    expect(u.name).toBe('pi');
    expect(u.lock_passwd).toBe(false);
    expect(u.passwd).toMatch(/^\$6\$/);
    expect(u.ssh_authorized_keys).toEqual([pubKey]);
    expect(u.sudo).toBe('ALL=(ALL) NOPASSWD:ALL');
    expect(u.groups.split(',')).toContain('sudo');
    // The hash really is the password's: openssl verifies it with the same salt.
    const salt = (u.passwd as string).split('$')[2] as string;
    const again = execFileSync('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], { input: `${PASSWORD}\n`, encoding: 'utf8' }).trim();
    expect(again).toBe(u.passwd);
  });

  it('network-config is netplan v2 for NetworkManager: static eth0 on pi1, Wi-Fi with the PSK on pi3', () => {
    const n1 = parse(mtoolsRead(pi1, 'network-config')).network;
    expect(n1).toEqual({
      version: 2,
      renderer: 'NetworkManager',
      ethernets: {
        eth0: {
          dhcp4: false,
          addresses: ['192.168.1.11/24'],
          routes: [{ to: 'default', via: '192.168.1.1' }],
          nameservers: { addresses: ['192.168.1.1', '1.1.1.1'] },
          optional: true,
        },
      },
    });
    const n3 = parse(mtoolsRead(pi3, 'network-config')).network;
    expect(n3.ethernets.eth0).toEqual({ dhcp4: true, optional: true });
    expect(n3.wifis.wlan0).toEqual({
      dhcp4: true,
      optional: true,
      'regulatory-domain': 'GB',
      'access-points': { 'pi-cluster': { password: wpaPsk('pi-cluster', WIFI_PASS) } },
    });
    const md = parse(mtoolsRead(pi1, 'meta-data'));
    expect(md).toEqual({ 'instance-id': 'pifaas-pi1', 'local-hostname': 'pi1', dsmode: 'local' });
  });

  it('cmdline.txt keeps the original line, adds the cgroup flags once and the Wi-Fi country', () => {
    const original = mtoolsRead(images.trixie as string, 'cmdline.txt').trimEnd();
    expect(cmdlineOf(pi1)).toBe(`${original} ${CGROUP} cfg80211.ieee80211_regdom=GB`);
  });

  it('changes nothing else: other boot files identical, root partition untouched, both file systems clean', () => {
    assertOtherBootFilesUnchanged(images.trixie as string, pi1, ['user-data', 'meta-data', 'network-config', 'cmdline.txt']);
    expect(debugfsLs(pi1, '/etc/NetworkManager/system-connections')).toEqual([]);
    expect(debugfsCat(pi1, '/usr/lib/os-release')).toBe(debugfsCat(images.trixie as string, '/usr/lib/os-release'));
    expect(debugfsCat(pi1, '/usr/lib/os-release')).toContain('VERSION_CODENAME=trixie');
    fsckBoot(pi1, dir);
    fsckRoot(pi1, dir);
    assertNoPlainSecrets(pi1);
    assertNoPlainSecrets(pi3);
  });

  it('burning the same output again gives the same card', async () => {
    // The password hash gets a fresh salt each run; everything else is byte-for-byte the same.
    const files = () => ['user-data', 'network-config', 'meta-data', 'cmdline.txt'].map((f) => mtoolsRead(pi3, f).replace(/\$6\$[^"]+/, '$6$(hash)'));
    const firstFiles = files();
    await burnTo('trixie', 'trixie', { hosts: ['pi3'] });
    expect(files()).toEqual(firstFiles);
    // Configuring an already configured card replaces, never appends.
    await configureImage(pi3, {
      hostname: 'pi3',
      user: 'pi',
      sshAuthorizedKeys: [pubKey],
      sshPasswordAuth: false,
      ethernet: { method: 'dhcp' },
      wifi: { ssid: 'pi-cluster', psk: wpaPsk('pi-cluster', WIFI_PASS), hidden: false, ipv4: { method: 'dhcp' } },
      wifiCountry: 'GB',
    });
    expect(cmdlineOf(pi3)).toBe(cmdlineOf(pi1));
    expect([...mtoolsList(pi3).keys()].filter((n) => n === 'user-data')).toHaveLength(1);
    fsckBoot(pi3, dir);
  });
});

describe('burn to image files: Raspberry Pi OS Bookworm (custom.toml + ssh + userconf.txt)', () => {
  let pi1: string;
  let pi3: string;
  let results: HostBurnResult[];
  beforeAll(async () => {
    results = await burnTo('bookworm', 'bookworm');
    pi1 = path.join(dir, 'bookworm', 'pi1.img');
    pi3 = path.join(dir, 'bookworm', 'pi3.img');
  });

  it('writes custom.toml with every section init_config reads', () => {
    expect(results[0]?.format).toBe('custom-toml');
    const toml = mtoolsRead(pi1, 'custom.toml');
    const hash = /^password = "(\$6\$[^"]+)"$/m.exec(toml)?.[1];
    expect(hash).toBeDefined();
    expect(toml).toContain('config_version = 1\n');
    expect(toml).toContain('[system]\nhostname = "pi1"\n');
    expect(toml).toContain(`[user]\nname = "pi"\npassword = "${hash}"\npassword_encrypted = true\n`);
    expect(toml).toContain(`[ssh]\nenabled = true\npassword_authentication = false\nauthorized_keys = [\n  "${pubKey}",\n]\n`);
    expect(toml).toContain('[locale]\nkeymap = "gb"\ntimezone = "Europe/London"\n');
    expect(toml).not.toContain('[wlan]');
    expect(mtoolsRead(pi1, 'userconf.txt')).toBe(`pi:${hash}\n`);
    expect(mtoolsList(pi1).has('ssh')).toBe(true);
    expect(mtoolsRead(pi1, 'ssh')).toBe('');
    expect(results[0]?.warnings).toEqual(['custom.toml cannot set the locale (en_GB.UTF-8); it stays the image\'s default']);
  });

  it('puts the static address in a root-owned 0600 NetworkManager keyfile', () => {
    const p = '/etc/NetworkManager/system-connections/pifaas-eth0.nmconnection';
    expect(debugfsStat(pi1, p)).toEqual({ mode: '0600', uid: 0, gid: 0 });
    const kf = debugfsCat(pi1, p) as string;
    expect(kf).toContain('[connection]\nid=pifaas-eth0\n');
    expect(kf).toContain('type=ethernet\ninterface-name=eth0\n');
    expect(kf).toContain('[ipv4]\nmethod=manual\naddress1=192.168.1.11/24,192.168.1.1\ndns=192.168.1.1;1.1.1.1;\n');
    expect(debugfsLs(pi3, '/etc/NetworkManager/system-connections')).toEqual([]);
  });

  it('joins Wi-Fi through [wlan] with the PSK, never the passphrase', () => {
    const toml = mtoolsRead(pi3, 'custom.toml');
    expect(toml).toContain(`[wlan]\nssid = "pi-cluster"\npassword = "${wpaPsk('pi-cluster', WIFI_PASS)}"\npassword_encrypted = true\nhidden = false\ncountry = "GB"\n`);
    assertNoPlainSecrets(pi3);
  });

  it('keeps the firstboot init in cmdline.txt and changes nothing else', () => {
    const c = cmdlineOf(pi1);
    expect(c).toContain('init=/usr/lib/raspberrypi-sys-mods/firstboot');
    expect(c.endsWith(`${CGROUP} cfg80211.ieee80211_regdom=GB`)).toBe(true);
    assertOtherBootFilesUnchanged(images.bookworm as string, pi1, ['custom.toml', 'ssh', 'userconf.txt', 'cmdline.txt']);
    fsckBoot(pi1, dir);
    fsckRoot(pi1, dir);
  });
});

describe('burn to image files: 2026 image with rpi-preseed', () => {
  it('writes rpi-preseed.toml, with [ethernet] because the image schema knows it', async () => {
    const results = await burnTo('preseed2026', 'preseed');
    expect(results.map((r) => r.format)).toEqual(['rpi-preseed', 'rpi-preseed']);
    const pi1 = path.join(dir, 'preseed', 'pi1.img');
    const toml = mtoolsRead(pi1, 'rpi-preseed.toml');
    expect(toml).toContain('config_version = "1.0"\n');
    expect(toml).toContain('[system]\nhostname = "pi1"\n');
    expect(toml).toMatch(/\[user\]\nname = "pi"\npassword = "\$6\$[^"]+"\npassword_encrypted = true\npasswordless_sudo = true\ngroups = \["sudo"\]\n/);
    expect(toml).toContain(`[ssh]\nenabled = true\npassword_authentication = false\nauthorized_keys = [\n  "${pubKey}",\n]\n`);
    expect(toml).toContain('[ethernet]\nmethod = "static"\ninterface = "eth0"\naddress = "192.168.1.11/24"\ngateway = "192.168.1.1"\ndns = [\n  "192.168.1.1",\n  "1.1.1.1",\n]\n');
    expect(toml).toContain('[locale]\nkeymap = "gb"\ntimezone = "Europe/London"\nlocales = [\n  "en_GB.UTF-8",\n]\nlang = "en_GB.UTF-8"\n');
    expect(debugfsLs(pi1, '/etc/NetworkManager/system-connections')).toEqual([]);
    const pi3 = mtoolsRead(path.join(dir, 'preseed', 'pi3.img'), 'rpi-preseed.toml');
    expect(pi3).toContain(`[wlan]\nssid = "pi-cluster"\npassword = "${wpaPsk('pi-cluster', WIFI_PASS)}"\npassword_encrypted = true\nhidden = false\nkey_mgmt = "wpa-psk"\ncountry = "GB"\n`);
    expect(cmdlineOf(pi1)).toContain(CGROUP);
    assertOtherBootFilesUnchanged(images.preseed2026 as string, pi1, ['rpi-preseed.toml', 'cmdline.txt']);
    fsckBoot(pi1, dir);
    fsckRoot(pi1, dir);
  });
});

describe('burn to image files: Ubuntu (cloud-init with netplan networkd)', () => {
  it('writes cloud-init files without the NetworkManager renderer and with Ubuntu groups', async () => {
    await burnTo('ubuntu', 'ubuntu', { hosts: ['pi1'] });
    const img = path.join(dir, 'ubuntu', 'pi1.img');
    const net = parse(mtoolsRead(img, 'network-config')).network;
    expect(net.renderer).toBeUndefined();
    expect(net.ethernets.eth0.addresses).toEqual(['192.168.1.11/24']);
    const ud = parse(mtoolsRead(img, 'user-data'));
    expect(ud.users[0].groups.split(',')).not.toContain('gpio');
    expect(ud.enable_ssh).toBeUndefined();
  });
});

describe('sources, verification and refusals', () => {
  beforeAll(() => {
    // A proxy from the environment must not take requests to the local servers here.
    for (const k of ['NO_PROXY', 'no_proxy']) process.env[k] = [process.env[k], '127.0.0.1'].filter(Boolean).join(',');
  });

  it('writes from .img.xz, .img.gz and .zip sources to the same bytes', async () => {
    const src = images.trixie as string;
    execFileSync('xz', ['-k', '-T0', '-1', '-f', src]);
    execFileSync('sh', ['-c', `gzip -1 -c '${src}' > '${src}.gz'`]);
    execFileSync('zip', ['-q', '-j', '-1', `${src}.zip`, src]);
    for (const ext of ['.xz', '.gz', '.zip']) {
      const out = path.join(dir, `from${ext}.img`);
      const r = await writeImage(`${src}${ext}`, { kind: 'file', path: out });
      // Nothing stays open once the card is written (etcher-sdk's .zip source never closes its file
      // itself). Checked before anything large is allocated, which could let V8 collect and close it.
      expect(descriptorsUnder(dir)).toEqual([]);
      expect(r.verified).toBe(true);
      expect(readFileSync(out).equals(readFileSync(src))).toBe(true);
    }
  });

  it('writes from an http URL', async () => {
    const src = images.trixie as string;
    const server = await serveImage(readFileSync(src));
    try {
      const out = path.join(dir, 'from-url.img');
      const r = await writeImage(`${server.url}/trixie.img`, { kind: 'file', path: out });
      expect(r.verified).toBe(true);
      expect(readFileSync(out).equals(readFileSync(src))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('an image URL that is not there or cannot be reached is a clear error', async () => {
    const server = createServer((_req, res) => res.writeHead(404).end('not found'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const out = path.join(dir, 'from-nowhere.img');
    try {
      const missing = await writeImage(`http://127.0.0.1:${port}/gone.img`, { kind: 'file', path: out }).catch((e) => e);
      expect(missing).toBeInstanceOf(UserError);
      expect((missing as UserError).message).toBe(`cannot download image http://127.0.0.1:${port}/gone.img: the server answered HTTP 404`);
      expect((missing as UserError).hint).toBe('check the URL given to --image');
    } finally {
      await new Promise((r) => server.close(r));
    }
    // The same port, now with nobody listening.
    const refused = await writeImage(`http://127.0.0.1:${port}/gone.img`, { kind: 'file', path: out }).catch((e) => e);
    expect(refused).toBeInstanceOf(UserError);
    expect((refused as UserError).message).toMatch(new RegExp(`^cannot download image http://127\\.0\\.0\\.1:${port}/gone\\.img: .*ECONNREFUSED`));
    expect((refused as UserError).hint).toMatch(/^check the URL and this machine's network/);
    expect(descriptorsUnder(dir)).toEqual([]);
  });

  it('fails verification when the target does not keep a byte', async () => {
    // A card that loses a bit after it was written: the byte changes on the medium between the
    // write and etcher-sdk's read-back (the real verifier then reads the file).
    class FlippingFile extends sourceDestination.File {
      override createVerifier(...args: Parameters<sourceDestination.File["createVerifier"]>) {
        const fd = openSync(this.path, 'r+');
        const b = Buffer.alloc(1);
        readSync(fd, b, 0, 1, BOOT_OFFSET + 3);
        b[0] = (b[0] ?? 0) ^ 0x01;
        writeSync(fd, b, 0, 1, BOOT_OFFSET + 3);
        closeSync(fd);
        return super.createVerifier(...args);
      }
    }
    const out = path.join(dir, 'flipped.img');
    const err = await writeImage(images.trixie as string, { kind: 'file', path: out }, { destination: new FlippingFile({ path: out, write: true }) }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/^verification of .*flipped\.img failed/);
    expect(descriptorsUnder(dir)).toEqual([]);
  });

  it('refuses a truncated .xz before writing anything', async () => {
    const cut = halfOfXz(images.bookworm as string, 'cut.img.xz');
    const outDir = path.join(dir, 'cut-out');
    const err = await burn(options({ image: cut, outputDir: outDir, hosts: ['pi1'] })).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    // Not liblzma's "File format not recognized", which points at the wrong format.
    expect((err as UserError).message).toBe(`${cut} is truncated or damaged: it starts as an .xz file, but its end (the index of what it holds) is missing or damaged`);
    expect((err as UserError).hint).toBe('download it again and check its SHA-256');
    mkdirSync(outDir, { recursive: true });
    expect(readdirNames(outDir)).not.toContain('pi1.img');
    // Neither the image nor the card (here a file) is left open: a card could not be ejected.
    expect(descriptorsUnder(dir)).toEqual([]);
  });

  it('refuses a file named .xz that is no xz at all, without calling it truncated', async () => {
    // Random bytes of a disk image's size: etcher-sdk, which goes by the content, would write them.
    const fake = path.join(dir, 'random.img.xz');
    writeFileSync(fake, randomBytes(200 * 512));
    const outDir = path.join(dir, 'random-out');
    const err = await burn(options({ image: fake, outputDir: outDir, hosts: ['pi1'] })).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe(`${fake} is not what its name says: it does not start as a .xz file does`);
    expect((err as UserError).hint).toBe('is it the image you meant? download it again and check its SHA-256');
    expect(readdirNames(outDir)).toEqual([]);
    expect(descriptorsUnder(dir)).toEqual([]);
  });

  it('refuses a truncated .gz, whose trailer then gives a size no disk image has', async () => {
    const src = images.bookworm as string;
    execFileSync('gzip', ['-k', '-1', '-f', src]);
    const cut = path.join(dir, 'cut.img.gz');
    copyFileSync(`${src}.gz`, cut);
    // gzip's size is its last 4 bytes, which are now compressed data: cut where they are no multiple of 512.
    let size = Math.floor(statSync(cut).size / 2);
    while (lastWord(cut, size) % 512 === 0) size--;
    truncateSync(cut, size);
    const err = await writeImage(cut, { kind: 'file', path: path.join(dir, 'cut-gz.img') }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/cut\.img\.gz says its content is \d+ bytes, .*the archive looks truncated or damaged$/);
    expect((err as UserError).hint).toBe('download it again and check its SHA-256');
    expect(descriptorsUnder(dir)).toEqual([]);
  });

  it('calls a .gz damaged in the middle damaged, not the card\'s fault', async () => {
    const src = images.bookworm as string;
    execFileSync('gzip', ['-k', '-1', '-f', src]);
    const damaged = path.join(dir, 'damaged.img.gz');
    const bytes = readFileSync(`${src}.gz`);
    // The header and the size trailer stay; deflate data in the middle becomes noise.
    randomFillSync(bytes, Math.floor(bytes.length / 2), 4096);
    writeFileSync(damaged, bytes);
    const err = await writeImage(damaged, { kind: 'file', path: path.join(dir, 'damaged-gz.img') }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/^writing .*damaged\.img\.gz failed: /);
    expect((err as UserError).hint).toBe('the image file looks damaged or truncated: download it again and check its SHA-256');
    expect(descriptorsUnder(dir)).toEqual([]);
  });

  it('leaves nothing open when the image breaks off while it is being written', async () => {
    const server = await serveImage(readFileSync(images.trixie as string), { breakOff: true });
    try {
      const err = await writeImage(`${server.url}/trixie.img`, { kind: 'file', path: path.join(dir, 'broken-off.img') }).catch((e) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).message).toMatch(/^writing http:\/\/127\.0\.0\.1:\d+\/trixie\.img failed: the download broke off/);
      expect((err as UserError).hint).toMatch(/run the same command again/);
      expect(descriptorsUnder(dir)).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('the pifaas process exits with the error when a download breaks off (also under a .xz) or answers 404', async () => {
    const src = images.trixie as string;
    execFileSync('xz', ['-k', '-T0', '-1', '-f', src]);
    // The whole .xz is one read (after its index): it breaks off after half of it.
    for (const [body, name, breakOff] of [
      [readFileSync(src), 'trixie.img', true],
      [readFileSync(`${src}.xz`), 'trixie.img.xz', 1024],
    ] as const) {
      const server = await serveImage(body, { breakOff });
      try {
        const r = await runBurn(['--image', `${server.url}/${name}`, '--output', path.join(dir, 'cli-broken-off')]);
        expect(r.stderr).toContain(`error: writing ${server.url}/${name} failed: the download broke off (aborted)\nhint: run the same command again`);
        expect(r.code, `exit after ${r.stderr}`).toBe(1);
        expect(r.exitedAfterError).toBeLessThan(3);
      } finally {
        await server.close();
      }
    }
    // A server that keeps connections open for a minute, as many do: its 404 page is not read.
    const server = createServer((_req, res) => res.writeHead(404).end('not found'));
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/gone.img`;
    try {
      const r = await runBurn(['--image', url, '--output', path.join(dir, 'cli-404')]);
      expect(r.stderr).toContain(`error: cannot download image ${url}: the server answered HTTP 404\n`);
      expect(r.code).toBe(1);
      expect(r.exitedAfterError).toBeLessThan(3);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('a failed pifaas burn --output leaves no pi1.img.partial behind, nor a stale one from an earlier run', async () => {
    const cut = halfOfXz(images.bookworm as string, 'cut-cli.img.xz');
    const notFound = createServer((_req, res) => res.writeHead(404).end('not found'));
    await new Promise<void>((r) => notFound.listen(0, '127.0.0.1', r));
    const port = (notFound.address() as AddressInfo).port;
    const brokenOff = await serveImage(readFileSync(images.trixie as string), { breakOff: true });
    try {
      const refused = createServer();
      await new Promise<void>((r) => refused.listen(0, '127.0.0.1', r));
      const refusedPort = (refused.address() as AddressInfo).port;
      await new Promise((r) => refused.close(r));
      for (const [name, image, said] of [
        ['missing', path.join(dir, 'nowhere.img.xz'), 'does not exist'],
        ['truncated-xz', cut, 'cut-cli.img.xz'],
        ['404', `http://127.0.0.1:${port}/gone.img`, 'the server answered HTTP 404'],
        ['refused', `http://127.0.0.1:${refusedPort}/x.img`, 'ECONNREFUSED'],
        ['broken-off', `${brokenOff.url}/trixie.img`, 'the download broke off'],
      ] as const) {
        const out = path.join(dir, `failed-${name}`);
        // What a run that was killed half-way leaves: the next run must not leave it either.
        mkdirSync(out, { recursive: true });
        writeFileSync(path.join(out, 'pi1.img.partial'), 'stale');
        const r = await runBurn(['--image', image, '--output', out]);
        expect(r.code, name).toBe(1);
        expect(r.stderr, name).toContain(said);
        expect(readdirNames(out), name).toEqual([]);
      }
    } finally {
      await brokenOff.close();
      notFound.closeAllConnections();
      await new Promise((r) => notFound.close(r));
    }
  }, 120_000);

  it('refuses an image with no known first-boot mechanism, saying what it found', async () => {
    const err = await burn(options({ image: images.unknown as string, outputDir: path.join(dir, 'unknown') })).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/uses no first-boot mechanism pifaas knows: found Debian GNU\/Linux 11 \(bullseye\); boot partition files: .*cmdline\.txt/);
    expect((err as UserError).hint).toMatch(/--format/);
    // Forcing a format works.
    const forced = await burn(options({ image: images.unknown as string, outputDir: path.join(dir, 'unknown'), hosts: ['pi1'], format: 'custom-toml' }));
    expect(forced[0]?.format).toBe('custom-toml');
    expect(forced[0]?.reason).toBe('forced with --format');
  });

  it('needs a way to log in and a Wi-Fi passphrase, and takes neither from argv', async () => {
    writeFileSync(path.join(dir, 'nokeys.yaml'), 'all:\n  children:\n    managers:\n      hosts:\n        m1: {}\n');
    const err = await burn(options({ inventoryFile: path.join(dir, 'nokeys.yaml'), outputDir: path.join(dir, 'nk'), secrets: { env: {} } })).catch((e) => e);
    expect((err as Error).message).toBe('host "m1" has no SSH key and no password, so nobody could log in');
    const err2 = await burn(options({ outputDir: path.join(dir, 'nw'), hosts: ['pi3'], secrets: { env: {} } })).catch((e) => e);
    expect((err2 as Error).message).toBe('host "pi3" joins Wi-Fi "pi-cluster" but no passphrase was given');
  });
});

/**
 * Runs `pifaas burn` for pi1 as a user does: the real CLI (from source) in its own process. A process
 * still running 10 s after it printed its error is killed; `exitedAfterError` is how long it ran on.
 */
async function runBurn(args: string[]): Promise<{ code: number | null; stderr: string; exitedAfterError?: number }> {
  const repo = path.resolve(import.meta.dirname, '../..');
  const child = spawn(process.execPath, ['--import', path.join(repo, 'node_modules/tsx/dist/loader.mjs'), path.join(repo, 'test/burn/run-cli.ts'), 'burn', inventory, '--host', 'pi1', '-q', ...args], {
    cwd: dir,
    env: { ...process.env, PIFAAS_USER_PASSWORD: PASSWORD, PIFAAS_WIFI_PASSWORD: WIFI_PASS },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let errorAt: number | undefined;
  let killer = setTimeout(() => child.kill('SIGKILL'), 50_000);
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (errorAt === undefined && stderr.includes('error: ')) {
      errorAt = performance.now();
      clearTimeout(killer);
      killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(killer);
  return { code, stderr, exitedAfterError: errorAt === undefined ? undefined : (performance.now() - errorAt) / 1000 };
}

/**
 * Serves `body` at any path, with range requests, as a download site does. `breakOff`: a download
 * that stops half-way: short reads (the partition table) are answered, reads of 1 MiB (or of
 * `breakOff` bytes) or more end after half of their bytes.
 */
async function serveImage(body: Buffer, opts: { breakOff?: boolean | number } = {}): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Number(range[2]) : body.length - 1;
    const part = body.subarray(start, end + 1);
    const headers = { 'content-length': part.length, 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
    if (range) res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${body.length}` });
    else res.writeHead(200, headers);
    if (req.method === 'HEAD') res.end();
    else if (opts.breakOff && part.length >= (opts.breakOff === true ? 1024 ** 2 : opts.breakOff)) res.write(part.subarray(0, part.length >> 1), () => res.destroy());
    else res.end(part);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

/** The first half of `src` compressed with xz, as `name` in the test's folder (its index, at the end, is gone). */
function halfOfXz(src: string, name: string): string {
  execFileSync('xz', ['-k', '-T0', '-1', '-f', src]);
  const cut = path.join(dir, name);
  copyFileSync(`${src}.xz`, cut);
  truncateSync(cut, Math.floor(statSync(cut).size / 2));
  return cut;
}

/** The little-endian 32-bit word that ends the first `size` bytes of `file`. */
function lastWord(file: string, size: number): number {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(4);
    readSync(fd, b, 0, 4, size - 4);
    return b.readUInt32LE(0);
  } finally {
    closeSync(fd);
  }
}

/** Files under `root` that this process still has open (from /proc/self/fd). */
function descriptorsUnder(root: string): string[] {
  return readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((target) => target.startsWith(`${root}/`));
}

function readdirNames(d: string): string[] {
  return execFileSync('ls', ['-A', d], { encoding: 'utf8' }).split('\n').filter(Boolean);
}
