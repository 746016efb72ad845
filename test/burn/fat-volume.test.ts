// The FAT editor against mkfs.vfat-made volumes, checked with mtools and fsck.vfat (independent
// readers). Covers the cases fatfs 0.10.8 gets wrong: shrinking/replacing a file, both FAT copies,
// empty files.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { FatVolume, type PartitionIo } from '../../src/burn/fat-volume.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pifaas-fat-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function mkfs(name: string, fatBits: 16 | 32, kib: number): string {
  const p = path.join(dir, name);
  rmSync(p, { force: true });
  execFileSync('mkfs.vfat', ['-F', String(fatBits), '-C', p, String(kib)], { stdio: 'ignore' });
  return p;
}

async function withVolume<T>(file: string, fn: (v: FatVolume) => Promise<T>): Promise<T> {
  const h = await open(file, 'r+');
  const io: PartitionIo = {
    async read(pos, len) {
      const b = Buffer.alloc(len);
      await h.read(b, 0, len, pos);
      return b;
    },
    async write(pos, data) {
      await h.write(data, 0, data.length, pos);
    },
  };
  try {
    return await fn(await FatVolume.open(io));
  } finally {
    await h.close();
  }
}

const mtype = (img: string, name: string) => execFileSync('mtype', ['-i', img, `::/${name}`], { encoding: 'utf8' });
const mdir = (img: string) =>
  execFileSync('mdir', ['-b', '-i', img, '::/'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^::\//, ''))
    .sort();
const fsck = (img: string) => execFileSync('fsck.vfat', ['-n', img], { encoding: 'utf8' });

/** Both FAT copies, as mkfs.vfat lays them out (boot sector fields). */
function fatCopies(img: string): Buffer[] {
  const b = readFileSync(img);
  const bps = b.readUInt16LE(11);
  const reserved = b.readUInt16LE(14);
  const n = b[16] ?? 0;
  const size = (b.readUInt16LE(22) || b.readUInt32LE(36)) * bps;
  return [...Array(n).keys()].map((i) => b.subarray(reserved * bps + i * size, reserved * bps + (i + 1) * size));
}

describe.each([
  ['FAT32', 32, 66000],
  ['FAT16', 16, 32000],
] as const)('FatVolume on %s', (_label, bits, kib) => {
  let img: string;
  beforeEach(() => {
    img = mkfs(`v${bits}.img`, bits, kib);
    writeFileSync(path.join(dir, 'config.txt'), 'dtparam=audio=on\n');
    execFileSync('mcopy', ['-i', img, path.join(dir, 'config.txt'), '::/config.txt']);
  });

  it('reads files mkfs/mtools wrote and writes files mtools reads back', async () => {
    await withVolume(img, async (v) => {
      expect(v.type).toBe(bits === 32 ? 'fat32' : 'fat16');
      expect((await v.readFile('config.txt'))?.toString()).toBe('dtparam=audio=on\n');
      expect((await v.readFile('CONFIG.TXT'))?.toString()).toBe('dtparam=audio=on\n');
      await v.writeFile('network-config', 'network:\n  version: 2\n');
      await v.writeFile('rpi-preseed.toml', 'config_version = "1.0"\n');
      await v.writeFile('USERCONF.TXT', 'pi:$6$x$y\n');
    });
    expect(mdir(img)).toEqual(['USERCONF.TXT', 'config.txt', 'network-config', 'rpi-preseed.toml']);
    expect(mtype(img, 'network-config')).toBe('network:\n  version: 2\n');
    expect(mtype(img, 'rpi-preseed.toml')).toBe('config_version = "1.0"\n');
    expect(fsck(img)).not.toMatch(/differ|out of range|chain|lost/i);
  });

  it('replaces a large file by a small one and deletes files, leaving fsck.vfat clean and both FATs equal', async () => {
    const big = 'x'.repeat(200_000);
    await withVolume(img, async (v) => {
      await v.writeFile('user-data', big);
      await v.writeFile('user-data', '#cloud-config\n');
      await v.writeFile('config.txt', 'dtparam=audio=off\n');
      await v.writeFile('gone.txt', 'temporary');
      expect(await v.deleteFile('gone.txt')).toBe(true);
      expect(await v.deleteFile('gone.txt')).toBe(false);
    });
    expect(mtype(img, 'user-data')).toBe('#cloud-config\n');
    expect(mtype(img, 'config.txt')).toBe('dtparam=audio=off\n');
    expect(mdir(img)).toEqual(['config.txt', 'user-data']);
    const out = fsck(img);
    expect(out).not.toMatch(/differ|out of range|chain|lost|Free cluster summary wrong/i);
    const [fat1, fat2] = fatCopies(img);
    expect(fat1?.equals(fat2 as Buffer)).toBe(true);
  });

  it('stores an empty file without clusters and grows the directory for many names', async () => {
    await withVolume(img, async (v) => {
      await v.writeFile('ssh', '');
      for (let i = 0; i < 40; i++) await v.writeFile(`a-rather-long-file-name-number-${i}.txt`, `file ${i}\n`);
    });
    expect(mtype(img, 'ssh')).toBe('');
    expect(mtype(img, 'a-rather-long-file-name-number-39.txt')).toBe('file 39\n');
    expect(mdir(img)).toHaveLength(42);
    expect(fsck(img)).not.toMatch(/differ|out of range|chain|lost|File size is 0 bytes, cluster chain/i);
    await withVolume(img, async (v) => {
      expect((await v.list()).find((f) => f.name === 'a-rather-long-file-name-number-7.txt')?.size).toBe(7);
    });
  });
});
