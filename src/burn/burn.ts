// Why: `pifaas burn` as a sequence a user can trust: for each host of the inventory, pick the target
// (a card in a drive, or an image file per host), check it is safe to write before opening it,
// confirm, write and verify the image, write that host's first-boot configuration, read it back,
// and tell the user to swap cards. An output file appears under its final name only when complete,
// and a failed one is removed.
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../user-error.js';
import { loadInventory, selectHosts } from '../inventory/inventory.js';
import { configureImage, detectImageFormat, type ConfigureResult } from './configure-image.js';
import { assertWritable, checkDrive, type DriveInfo } from './drive-safety.js';
import type { FirstBootConfig, FirstBootFormat } from './first-boot.js';
import { hostFirstBootConfig, SecretCache, type SecretSource } from './host-config.js';
import { writeImage, type WriteProgress, type WriteResult } from './image-writer.js';
import { formatBytes } from '../cli/output.js';

export interface BurnUi {
  /** Asks a yes/no question; resolves false when there is no one to ask. */
  confirm(question: string): Promise<boolean>;
  /** Waits until the user has put the next card in; undefined when there is no terminal. */
  waitForNextCard?: (host: string, device: string) => Promise<void>;
  progress(host: string, p: WriteProgress): void;
  info(message: string): void;
}

export interface BurnOptions {
  inventoryFile: string;
  image: string;
  hosts?: string[];
  device?: string;
  outputDir?: string;
  format?: FirstBootFormat;
  force?: boolean;
  yes?: boolean;
  maxSize: number;
  verify?: boolean;
  secrets: SecretSource;
  ui: BurnUi;
}

export interface HostBurnResult extends Omit<ConfigureResult, 'cmdline'> {
  host: string;
  hostname: string;
  user: string;
  target: string;
  image: string;
  size: number;
  writeSeconds: number;
  verifySeconds: number;
  verified: boolean;
  cmdline: string;
  network: string;
}

function describeNetwork(cfg: FirstBootConfig): string {
  const ip = (m: FirstBootConfig['ethernet']) => (m.method === 'dhcp' ? 'DHCP' : `static ${m.address}${m.gateway ? ` via ${m.gateway}` : ''}`);
  const parts = [`eth0 ${ip(cfg.ethernet)}`];
  if (cfg.wifi) parts.push(`wlan0 "${cfg.wifi.ssid}" ${ip(cfg.wifi.ipv4)}`);
  return parts.join(', ');
}

export async function burn(opts: BurnOptions): Promise<HostBurnResult[]> {
  if (!!opts.device === !!opts.outputDir) {
    throw new UserError(
      opts.device ? 'give either --device or --output, not both' : 'say where to write: --device /dev/sdX (an SD card) or --output DIR (one image file per host)',
      'list the drives with `pifaas burn --list-drives`',
    );
  }
  const inventory = await loadInventory(opts.inventoryFile);
  const hosts = selectHosts(inventory, opts.hosts);
  if (opts.device && hosts.length > 1 && !opts.ui.waitForNextCard) {
    throw new UserError(
      `${hosts.length} hosts to write to one drive, but there is no terminal to say when the next card is in`,
      'burn one card per run with --host NAME, or write image files with --output DIR',
    );
  }

  // Everything that can fail before writing does so now: secrets, keys, and (for a plain image
  // file) the first-boot format.
  const secrets = new SecretCache(opts.secrets);
  const configs: FirstBootConfig[] = [];
  for (const h of hosts) configs.push(await hostFirstBootConfig(h, opts.inventoryFile, secrets));
  if (/\.(img|raw|bin)$/i.test(opts.image) && !/^https?:/.test(opts.image)) {
    const detected = await detectImageFormat(opts.image, opts.format);
    opts.ui.info(`${path.basename(opts.image)}: first-boot format ${detected.format} (${detected.reason})`);
  }

  const results: HostBurnResult[] = [];
  for (let i = 0; i < hosts.length; i++) {
    const host = hosts[i]!;
    const cfg = configs[i]!;
    let written: WriteResult;
    let configured: ConfigureResult;
    let target: string;
    if (opts.outputDir) {
      await mkdir(opts.outputDir, { recursive: true });
      target = path.join(opts.outputDir, `${host.name}.img`);
      const partial = `${target}.partial`;
      await rm(partial, { force: true });
      // The card image holds the password hash and the Wi-Fi key: only its owner may read it.
      await writeFile(partial, '', { mode: 0o600 });
      try {
        written = await writeImage(opts.image, { kind: 'file', path: partial }, { verify: opts.verify, onProgress: (p) => opts.ui.progress(host.name, p) });
        configured = await configureImage(partial, cfg, opts.format);
      } catch (e) {
        // Nothing can resume a half-written image (a run starts over), so a failed one is not kept.
        await rm(partial, { force: true });
        throw e;
      }
      await rename(partial, target);
    } else {
      const device = opts.device as string;
      if (i > 0) {
        opts.ui.info(`Card for ${hosts[i - 1]!.name} is done: take it out.`);
        await opts.ui.waitForNextCard?.(host.name, device);
      }
      // The safety check comes before anything opens the device for writing.
      const verdict = await checkDrive(device, { maxSize: opts.maxSize });
      assertWritable(verdict, opts.force ?? false);
      const info: DriveInfo = verdict.info;
      if (verdict.problems.length) opts.ui.info(`--force: writing ${device} despite: ${verdict.problems.join('; ')}`);
      if (!opts.yes) {
        const ok = await opts.ui.confirm(
          `Write ${path.basename(opts.image)} for ${host.name} to ${info.device} (${info.description}, ${info.size ? formatBytes(info.size) : 'unknown size'})? Everything on it will be erased.`,
        );
        if (!ok) throw new UserError(`not writing ${info.device}: not confirmed`, 'answer y at the prompt, or pass --yes in scripts');
      }
      target = info.device;
      written = await writeImage(opts.image, { kind: 'drive', drive: info.drive }, { verify: opts.verify, onProgress: (p) => opts.ui.progress(host.name, p) });
      configured = await configureImage(info.device, cfg, opts.format);
    }
    for (const w of configured.warnings) opts.ui.info(`warning (${host.name}): ${w}`);
    results.push({
      host: host.name,
      hostname: cfg.hostname,
      user: cfg.user,
      target,
      image: opts.image,
      size: written.size,
      writeSeconds: written.writeSeconds,
      verifySeconds: written.verifySeconds,
      verified: written.verified,
      network: describeNetwork(cfg),
      ...configured,
    });
  }
  if (opts.device && hosts.length) opts.ui.info(`Card for ${hosts.at(-1)!.name} is done: take it out and boot the Pi.`);
  return results;
}
