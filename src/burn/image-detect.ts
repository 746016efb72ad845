// Why: writing custom.toml to an image that only reads cloud-init (or user-data to one that only
// reads custom.toml) silently does nothing and leaves a headless Pi unreachable. So the first-boot
// format is decided from what the image itself carries: /etc/os-release and the first-boot tools
// in the root partition, and the files on the boot partition. An image matching none is an error
// that says what was found.
import { UserError } from '../user-error.js';
import { extExists, extReadText, type DiskImage } from './disk-image.js';
import { FIRST_BOOT_FORMATS, type FirstBootFormat } from './first-boot.js';

export interface ImageFacts {
  bootFiles: string[];
  cmdline?: string;
  osRelease: Record<string, string>;
  hasCloudInit: boolean;
  hasRpiPreseed: boolean;
  /** raspberrypi-sys-mods' init_config, the custom.toml reader. */
  hasInitConfig: boolean;
  hasNetworkManager: boolean;
  /** Keys of the image's rpi-preseed schema (empty when none). */
  preseedSchemaKeys: Set<string>;
}

export interface Detection {
  format: FirstBootFormat;
  reason: string;
  facts: ImageFacts;
}

async function anyExists(fs: Parameters<typeof extExists>[0], paths: string[]): Promise<boolean> {
  for (const p of paths) if (await extExists(fs, p)) return true;
  return false;
}

export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2] ?? '';
    if (/^".*"$|^'.*'$/.test(v)) v = v.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
    out[m[1] as string] = v;
  }
  return out;
}

export async function readImageFacts(image: DiskImage): Promise<ImageFacts> {
  const boot = await image.bootFs();
  const bootFiles = (await boot.list()).map((f) => f.name);
  const cmdline = (await boot.readFile('cmdline.txt'))?.toString('utf8');
  const root = image.root
    ? await image.withRootFs(async (fs) => {
        const osText = (await extReadText(fs, '/etc/os-release')) ?? (await extReadText(fs, '/usr/lib/os-release')) ?? '';
        const schema = (await extReadText(fs, '/usr/share/rpi-preseed/rpi-preseed.schema')) ?? '';
        return {
          osRelease: parseOsRelease(osText),
          hasCloudInit: await anyExists(fs, ['/usr/bin/cloud-init', '/etc/cloud/cloud.cfg']),
          hasRpiPreseed: await anyExists(fs, [
            '/usr/lib/rpi-preseed/rpi-preseed',
            '/usr/bin/rpi-preseed',
            '/usr/lib/systemd/system/rpi-preseed.service',
            '/lib/systemd/system/rpi-preseed.service',
          ]),
          hasInitConfig: await anyExists(fs, ['/usr/lib/raspberrypi-sys-mods/init_config']),
          hasNetworkManager: await anyExists(fs, ['/usr/sbin/NetworkManager', '/etc/NetworkManager']),
          preseedSchemaKeys: new Set(
            schema
              .split('\n')
              .filter((l) => l.trim() && !l.trim().startsWith('#'))
              .map((l) => l.trim().split(/\s+/)[0] as string),
          ),
        };
      })
    : { osRelease: {}, hasCloudInit: false, hasRpiPreseed: false, hasInitConfig: false, hasNetworkManager: false, preseedSchemaKeys: new Set<string>() };
  return { bootFiles, cmdline, ...root };
}

function describeFacts(f: ImageFacts): string {
  const os = f.osRelease.PRETTY_NAME ?? (f.osRelease.ID ? `${f.osRelease.ID} ${f.osRelease.VERSION_CODENAME ?? ''}`.trim() : 'no /etc/os-release');
  return `${os}; boot partition files: ${f.bootFiles.join(', ') || '(none)'}`;
}

/** Picks the first-boot format: forced, or from what the image carries. */
export function chooseFormat(facts: ImageFacts, forced: FirstBootFormat | undefined, imageName: string): Detection {
  if (forced) {
    if (!FIRST_BOOT_FORMATS.includes(forced)) throw new UserError(`unknown first-boot format "${forced}"`, `use one of ${FIRST_BOOT_FORMATS.join(', ')}`);
    return { format: forced, reason: 'forced with --format', facts };
  }
  const codename = facts.osRelease.VERSION_CODENAME ?? '';
  const boot = new Set(facts.bootFiles.map((n) => n.toLowerCase()));
  if (facts.hasRpiPreseed) return { format: 'rpi-preseed', reason: 'the root partition has rpi-preseed', facts };
  if (facts.hasCloudInit || boot.has('user-data') || boot.has('meta-data')) {
    return {
      format: 'cloud-init',
      reason: facts.hasCloudInit ? 'the root partition has cloud-init' : 'the boot partition carries cloud-init NoCloud files',
      facts,
    };
  }
  if (facts.hasInitConfig) {
    return { format: 'custom-toml', reason: `the root partition has raspberrypi-sys-mods init_config (${codename || 'unknown release'})`, facts };
  }
  throw new UserError(
    `${imageName} uses no first-boot mechanism pifaas knows: found ${describeFacts(facts)}; no cloud-init, rpi-preseed or raspberrypi-sys-mods init_config in the root partition`,
    `pifaas burn supports Raspberry Pi OS Bookworm (custom.toml), Trixie and Ubuntu (cloud-init) and 2026 images (rpi-preseed.toml); if you know what this image reads, pass --format ${FIRST_BOOT_FORMATS.join('|')}`,
  );
}
