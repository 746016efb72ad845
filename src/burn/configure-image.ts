// Why: the step after writing a card: put one host's first-boot configuration on it, in the format
// the image reads, and the cgroup flags in cmdline.txt; then read every file back to prove it is
// there. Files are replaced, never appended to, so configuring twice gives the same card.
import { UserError } from '../user-error.js';
import { pifaasKernelParams, setKernelParams } from './cmdline.js';
import { DiskImage, extReadText, extWriteFile } from './disk-image.js';
import { cloudInitPlan } from './format-cloud-init.js';
import { customTomlPlan } from './format-custom-toml.js';
import { rpiPreseedPlan } from './format-rpi-preseed.js';
import { chooseFormat, readImageFacts, type Detection } from './image-detect.js';
import type { BootPlan, FirstBootConfig, FirstBootFormat } from './first-boot.js';

export interface ConfigureResult {
  format: FirstBootFormat;
  reason: string;
  os: string;
  bootFiles: string[];
  rootFiles: string[];
  cmdline: string;
  warnings: string[];
}

export function planFor(cfg: FirstBootConfig, detection: Detection): BootPlan {
  const f = detection.facts;
  switch (detection.format) {
    case 'cloud-init':
      return cloudInitPlan(cfg, { osId: f.osRelease.ID ?? 'raspbian' });
    case 'custom-toml':
      return customTomlPlan(cfg);
    case 'rpi-preseed':
      return rpiPreseedPlan(cfg, { schemaKeys: f.preseedSchemaKeys });
  }
}

/** Detects the format only (read-only), for `--dry-run` and error messages before writing. */
export async function detectImageFormat(path: string, forced?: FirstBootFormat): Promise<Detection> {
  const image = await DiskImage.open(path, { writable: false });
  try {
    return chooseFormat(await readImageFacts(image), forced, path);
  } finally {
    await image.close();
  }
}

/** Writes one host's first-boot configuration onto a written card or image file. */
export async function configureImage(path: string, cfg: FirstBootConfig, forced?: FirstBootFormat): Promise<ConfigureResult> {
  const image = await DiskImage.open(path, { writable: true });
  try {
    const detection = chooseFormat(await readImageFacts(image), forced, path);
    const plan = planFor(cfg, detection);
    const warnings = [...plan.warnings];
    const boot = await image.bootFs();

    const oldCmdline = (await boot.readFile('cmdline.txt'))?.toString('utf8');
    if (oldCmdline === undefined) throw new UserError(`the boot partition of ${path} has no cmdline.txt`, 'is this a Raspberry Pi image?');
    if (plan.format === 'custom-toml' && !oldCmdline.includes('init=/usr/lib/raspberrypi-sys-mods/firstboot')) {
      warnings.push('cmdline.txt does not run raspberrypi-sys-mods firstboot (has this image been booted before?), so custom.toml will not be applied');
    }
    if (plan.rootFiles.length && !detection.facts.hasNetworkManager) {
      warnings.push('the image has no NetworkManager; the static address keyfile will be ignored');
    }
    const cmdline = setKernelParams(oldCmdline, pifaasKernelParams(cfg.wifiCountry));

    for (const f of plan.bootFiles) await boot.writeFile(f.name, f.content);
    await boot.writeFile('cmdline.txt', cmdline);
    if (plan.rootFiles.length) {
      await image.withRootFs(async (fs) => {
        for (const f of plan.rootFiles) await extWriteFile(fs, f.path, f.content, f.mode);
      });
    }

    // Read everything back through a fresh view of the partitions.
    const check = await image.bootFs();
    for (const f of [...plan.bootFiles, { name: 'cmdline.txt', content: cmdline }]) {
      const back = (await check.readFile(f.name))?.toString('utf8');
      if (back !== f.content) throw new UserError(`${f.name} on ${path} does not read back as written; the card may be failing`, 'try another card');
    }
    if (plan.rootFiles.length) {
      await image.withRootFs(async (fs) => {
        for (const f of plan.rootFiles) {
          if ((await extReadText(fs, f.path)) !== f.content) {
            throw new UserError(`${f.path} in the root partition of ${path} does not read back as written`, 'try another card');
          }
        }
      });
    }
    const os = detection.facts.osRelease;
    return {
      format: plan.format,
      reason: detection.reason,
      os: os.PRETTY_NAME ?? os.ID ?? 'unknown',
      bootFiles: [...plan.bootFiles.map((f) => f.name), 'cmdline.txt'],
      rootFiles: plan.rootFiles.map((f) => f.path),
      cmdline: cmdline.trimEnd(),
      warnings,
    };
  } finally {
    await image.close();
  }
}
