// Why: `pifaas burn` parses flags, asks questions on the terminal (confirmation, card swaps, hidden
// password prompts), draws the write/verify bars, and prints one summary per host (or JSON); the
// work itself is src/burn/burn.ts.
import { Command, Option } from 'commander';
import { createInterface } from 'node:readline';
import { createByteProgress, type ByteProgress } from '../cli/byte-progress.js';
import { withExamples } from '../cli/command-help.js';
import { formatBytes, formatTable, printResult } from '../cli/output.js';
import { burn, type HostBurnResult } from '../burn/burn.js';
import { listDrives } from '../burn/drive-safety.js';
import { FIRST_BOOT_FORMATS, type FirstBootFormat } from '../burn/first-boot.js';
import type { WriteProgress } from '../burn/image-writer.js';
import { UserError } from '../user-error.js';

interface BurnFlags {
  image?: string;
  host?: string[];
  device?: string;
  output?: string;
  format?: FirstBootFormat;
  force?: boolean;
  yes?: boolean;
  maxSize: string;
  verify: boolean;
  json?: boolean;
  quiet?: boolean;
  listDrives?: boolean;
}

const interactive = () => Boolean(process.stdin.isTTY && process.stderr.isTTY);

/** Reads one line from the terminal; with `hidden`, typed characters are not echoed. */
function askLine(question: string, hidden: boolean): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    if (hidden) {
      const rlw = rl as unknown as { _writeToOutput: (s: string) => void };
      rlw._writeToOutput = (s: string) => {
        if (s.startsWith(question)) process.stderr.write(question);
      };
    }
    rl.question(question, (answer) => {
      if (hidden) process.stderr.write('\n');
      rl.close();
      resolve(answer);
    });
  });
}

function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(k|m|g|t)?b?$/i.exec(text.trim());
  if (!m) throw new UserError(`--max-size ${text} is not a size`, 'write it like 64G or 256G');
  const mult = { k: 1e3, m: 1e6, g: 1e9, t: 1e12 }[(m[2] ?? '').toLowerCase() as 'k'] ?? 1;
  return Number(m[1]) * mult;
}

function humanSummary(results: HostBurnResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    const speed = r.writeSeconds > 0 ? `${formatBytes(r.size / r.writeSeconds)}/s` : '-';
    lines.push(
      `${r.host}: ${r.target} written (${formatBytes(r.size)} in ${r.writeSeconds.toFixed(1)} s, ${speed})${r.verified ? `, verified in ${r.verifySeconds.toFixed(1)} s` : ', NOT verified'}`,
      `  image: ${r.os}; first boot: ${r.format} (${r.reason})`,
      `  host name ${r.hostname}, user ${r.user}; ${r.network}`,
      `  boot partition: ${r.bootFiles.join(', ')}${r.rootFiles.length ? `; root partition: ${r.rootFiles.join(', ')}` : ''}`,
      ...r.warnings.map((w) => `  warning: ${w}`),
    );
  }
  return lines.join('\n');
}

export function burnCommand(): Command {
  const cmd = new Command('burn')
    .description('write a Raspberry Pi OS image to SD cards (or image files), verified, with each host\'s first-boot setup')
    .argument('[inventory]', 'the inventory.yaml listing the hosts to burn')
    .option('--image <file|url>', 'Raspberry Pi OS image: .img, .img.xz, .img.gz, .zip or an http(s) URL')
    .option('--host <name...>', 'burn only these hosts (default: every host, one card each)')
    .option('--device <path>', 'the SD card to write, e.g. /dev/sdb (asked before writing)')
    .option('--output <dir>', 'write one ready image file per host into DIR instead of a card')
    .addOption(new Option('--format <format>', 'first-boot format when detection cannot tell').choices([...FIRST_BOOT_FORMATS]))
    .option('--max-size <size>', 'refuse drives larger than this (SD cards are small)', '128G')
    .option('--force', 'write even a system, mounted or oversized drive')
    .option('-y, --yes', 'do not ask before writing a drive (for scripts)')
    .option('--no-verify', 'skip reading the card back after writing')
    .option('--list-drives', 'list the drives and whether pifaas would write them')
    .option('--json', 'print a JSON summary per host')
    .option('-q, --quiet', 'no progress bars')
    .action(async (inventory: string | undefined, flags: BurnFlags) => {
      const maxSize = parseSize(flags.maxSize);
      if (flags.listDrives) {
        const drives = await listDrives();
        const rows = drives.map((d) => {
          const problems = [d.isSystem ? 'system drive' : '', d.inUse.length ? 'in use' : '', d.size !== null && d.size > maxSize ? 'too large' : '', d.size ? '' : 'no size']
            .filter(Boolean)
            .join(', ');
          return { device: d.device, size: d.size, description: d.description, removable: d.isRemovable, writable: problems === '', problems, inUse: d.inUse };
        });
        printResult(flags, { drives: rows }, (x) =>
          formatTable(
            ['DEVICE', 'SIZE', 'DESCRIPTION', 'WRITABLE'],
            x.drives.map((d) => [d.device, d.size ? formatBytes(d.size) : '-', d.description, d.writable ? 'yes' : `no: ${d.problems}`]),
          ),
        );
        return;
      }
      if (!inventory) throw new UserError('missing the inventory argument', 'pifaas burn inventory.yaml --image raspios.img.xz --device /dev/sdX');
      if (!flags.image) throw new UserError('missing --image', 'download Raspberry Pi OS Lite (.img.xz) and pass it with --image');
      const tty = interactive();
      let bar: { host: string; phase: string; progress: ByteProgress } | undefined;
      const stopBar = () => {
        bar?.progress.stop();
        bar = undefined;
      };
      const results = await burn({
        inventoryFile: inventory,
        image: flags.image,
        hosts: flags.host,
        device: flags.device,
        outputDir: flags.output,
        format: flags.format,
        force: flags.force,
        yes: flags.yes,
        maxSize,
        verify: flags.verify,
        secrets: { env: process.env, ask: tty ? (q) => askLine(q, true) : undefined },
        ui: {
          confirm: async (q) => {
            if (!tty) return false;
            return /^y(es)?$/i.test((await askLine(`${q} [y/N] `, false)).trim());
          },
          waitForNextCard: tty
            ? async (host, device) => {
                stopBar();
                await askLine(`Insert the card for ${host} (it will go to ${device}) and press Enter `, false);
              }
            : undefined,
          progress: (host: string, p: WriteProgress) => {
            if (!bar || bar.host !== host || bar.phase !== p.phase) {
              stopBar();
              const label = `${host} ${p.phase === 'flashing' ? 'write ' : p.phase === 'verifying' ? 'verify' : 'unpack'}`;
              bar = { host, phase: p.phase, progress: createByteProgress({ label, total: p.total, silent: flags.quiet }) };
            }
            bar.progress.update(p.done, p.total);
          },
          info: (m) => {
            stopBar();
            if (!flags.quiet || m.startsWith('warning')) process.stderr.write(`${m}\n`);
          },
        },
      }).finally(stopBar);
      printResult(flags, { hosts: results }, (d) => humanSummary(d.hosts));
    });
  withExamples(
    cmd,
    'pifaas burn inventory.yaml --image 2025-10-01-raspios-trixie-arm64-lite.img.xz --device /dev/sdb',
    'pifaas burn inventory.yaml --image raspios.img.xz --output cards/      # cards/pi1.img, cards/pi2.img, ...',
    'PIFAAS_WIFI_PASSWORD=... pifaas burn inventory.yaml --host pi3 --image raspios.img.xz --device /dev/sdb --yes --json',
    'pifaas burn --list-drives',
  );
  return cmd;
}
