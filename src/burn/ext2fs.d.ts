// Why: the `ext2fs` package (libext2fs compiled to WebAssembly, used by balena-image-fs) ships no
// type declarations; this declares the part pifaas uses to edit the root partition without mounting.
declare module 'ext2fs' {
  import type { Disk } from 'file-disk';
  import type { promises as fsPromises } from 'node:fs';
  export interface Ext2Fs {
    promises: typeof fsPromises;
  }
  export function mount(disk: Disk, offset?: number): Promise<Ext2Fs>;
  export function umount(fs: Ext2Fs): Promise<void>;
  export function withMountedDisk<T>(disk: Disk, offset: number, fn: (fs: Ext2Fs) => Promise<T>): Promise<T>;
}
