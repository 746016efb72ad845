// Why: after the image is written, pifaas edits the card's boot (FAT) and root (ext4) partitions in
// place, on an image file or a block device alike, without mounting anything. This module opens the
// target, reads its partition table (partitioninfo) and hands out the two file systems: our FAT
// editor for the boot partition and libext2fs (the `ext2fs` package) for the root partition.
import { open, type FileHandle } from 'node:fs/promises';
import * as ext2fs from 'ext2fs';
import { FileDisk } from 'file-disk';
import { getPartitions } from 'partitioninfo';
import { UserError } from '../user-error.js';
import { FatVolume, type PartitionIo } from './fat-volume.js';

export interface PartitionInfo {
  index: number;
  offset: number;
  size: number;
  /** MBR type byte as hex ("0c") or GPT type GUID. */
  type: string;
}

const FAT_MBR_TYPES = new Set([0x01, 0x04, 0x06, 0x0b, 0x0c, 0x0e]);
const LINUX_MBR_TYPE = 0x83;
const GPT_BASIC_DATA = 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7';
const GPT_EFI = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const GPT_LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

export type ExtFs = ext2fs.Ext2Fs['promises'];

export class DiskImage {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly partitions: PartitionInfo[],
    readonly boot: PartitionInfo,
    readonly root: PartitionInfo | undefined,
    private readonly writable: boolean,
  ) {}

  /** Opens an image file or block device and finds its boot and root partitions. */
  static async open(path: string, opts: { writable: boolean }): Promise<DiskImage> {
    let handle: FileHandle;
    try {
      handle = await open(path, opts.writable ? 'r+' : 'r');
    } catch (e) {
      throw new UserError(`cannot open ${path}: ${(e as Error).message}`, 'check the path and your permissions');
    }
    try {
      const disk = new FileDisk(handle, true);
      let table;
      try {
        table = await getPartitions(disk, { includeExtended: false, getLogical: true });
      } catch (e) {
        throw new UserError(
          `${path} has no readable partition table (${(e as Error).message})`,
          'a Raspberry Pi image starts with an MBR partition table: a FAT boot partition and an ext4 root partition; check the image file',
        );
      }
      const partitions: PartitionInfo[] = table.partitions.map((p) => ({
        index: p.index,
        offset: p.offset,
        size: p.size,
        type: typeof p.type === 'number' ? p.type.toString(16).padStart(2, '0') : String(p.type).toUpperCase(),
      }));
      const isFat = (p: PartitionInfo) =>
        table.type === 'mbr' ? FAT_MBR_TYPES.has(parseInt(p.type, 16)) : p.type === GPT_BASIC_DATA || p.type === GPT_EFI;
      const isLinux = (p: PartitionInfo) => (table.type === 'mbr' ? parseInt(p.type, 16) === LINUX_MBR_TYPE : p.type === GPT_LINUX);
      const boot = partitions.find(isFat);
      if (!boot) {
        throw new UserError(
          `${path} has no FAT boot partition (partitions: ${partitions.map((p) => `#${p.index} type ${p.type}`).join(', ') || 'none'})`,
          'pass a Raspberry Pi OS or Ubuntu for Raspberry Pi image',
        );
      }
      return new DiskImage(path, handle, partitions, boot, partitions.find(isLinux), opts.writable);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  private ioFor(p: PartitionInfo): PartitionIo {
    const h = this.handle;
    return {
      async read(position, length) {
        if (position < 0 || position + length > p.size) throw new Error(`read outside partition #${p.index}`);
        const buf = Buffer.alloc(length);
        const { bytesRead } = await h.read(buf, 0, length, p.offset + position);
        if (bytesRead !== length) throw new Error(`short read in partition #${p.index} at ${position}`);
        return buf;
      },
      write: async (position, data) => {
        if (!this.writable) throw new Error('image opened read-only');
        if (position < 0 || position + data.length > p.size) throw new Error(`write outside partition #${p.index}`);
        const { bytesWritten } = await h.write(data, 0, data.length, p.offset + position);
        if (bytesWritten !== data.length) throw new Error(`short write in partition #${p.index} at ${position}`);
      },
    };
  }

  /** The boot partition's FAT file system. */
  async bootFs(): Promise<FatVolume> {
    try {
      return await FatVolume.open(this.ioFor(this.boot));
    } catch (e) {
      throw new UserError(`the boot partition of ${this.path} (#${this.boot.index}) is not a usable FAT file system: ${(e as Error).message}`);
    }
  }

  /** Runs `fn` with the root partition's ext2/3/4 file system (libext2fs), then unmounts it. */
  async withRootFs<T>(fn: (fs: ExtFs) => Promise<T>): Promise<T> {
    const root = this.root;
    if (!root) throw new UserError(`${this.path} has no Linux root partition (type 83)`);
    // Read-only: libext2fs still writes (mount bookkeeping); keep those writes in memory.
    const disk = new FileDisk(this.handle, !this.writable, !this.writable);
    let mounted: ext2fs.Ext2Fs;
    try {
      mounted = await ext2fs.mount(disk, root.offset);
    } catch (e) {
      throw new UserError(`the root partition of ${this.path} (#${root.index}) is not an ext2/3/4 file system: ${(e as Error).message}`);
    }
    try {
      return await fn(mounted.promises);
    } finally {
      await ext2fs.umount(mounted);
    }
  }

  async close(): Promise<void> {
    if (this.writable) await this.handle.sync().catch(() => undefined);
    await this.handle.close();
  }
}

/** Whether a path exists in an ext file system. */
export async function extExists(fs: ExtFs, p: string): Promise<boolean> {
  try {
    await fs.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Reads a text file from an ext file system, or undefined when absent. */
export async function extReadText(fs: ExtFs, p: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(p)).toString('utf8');
  } catch {
    return undefined;
  }
}

/** Writes a file (creating parent directories 0755) with the given mode, owned by root. */
export async function extWriteFile(fs: ExtFs, p: string, content: string, mode: number): Promise<void> {
  const parts = p.split('/').filter(Boolean);
  let dir = '';
  for (const part of parts.slice(0, -1)) {
    dir += `/${part}`;
    if (!(await extExists(fs, dir))) {
      await fs.mkdir(dir);
      await fs.chmod(dir, 0o755);
      await fs.chown(dir, 0, 0);
    }
  }
  if (await extExists(fs, p)) await fs.unlink(p);
  await fs.writeFile(p, content);
  await fs.chmod(p, mode);
  await fs.chown(p, 0, 0);
}
