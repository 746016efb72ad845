// Why: the boot partition of a Raspberry Pi card is FAT32 (FAT16 on some older images) and has to be
// edited without mounting it (vfat may not mount, and writing an image file must not need root).
// balena-image-fs edits FAT through `fatfs` 0.10.8, which corrupts FAT32 volumes when a file
// shrinks or is replaced (freed clusters are written as 0x0FFFFF00 instead of 0), never updates
// the second FAT copy, and keeps a cluster allocated for empty files; fsck.vfat flags all three.
// This module is the small, checked subset pifaas needs instead: list, read, write, replace and
// delete files in the root directory of a FAT16/FAT32 volume, with long file names, every FAT
// copy kept in step and the FSInfo free count maintained.

/** Random access to the bytes of one partition (offsets relative to its start). */
export interface PartitionIo {
  read(position: number, length: number): Promise<Buffer>;
  write(position: number, data: Buffer): Promise<void>;
}

export class FatError extends Error {
  override readonly name = 'FatError';
}

export interface FatFileInfo {
  /** The long name when there is one, else the 8.3 name as Linux shows it. */
  name: string;
  size: number;
  isDirectory: boolean;
}

interface DirEntryRef extends FatFileInfo {
  shortName: string;
  firstCluster: number;
  /** Byte positions (partition-relative) of the long-name entries and the short entry, in order. */
  slots: number[];
}

const ENTRY = 32;
const ATTR_LFN = 0x0f;
const ATTR_DIR = 0x10;
const ATTR_VOLUME = 0x08;
const ATTR_ARCHIVE = 0x20;
const DELETED = 0xe5;

function shortNameChecksum(name11: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + (name11[i] ?? 0)) & 0xff;
  return sum;
}

function fatDateTime(d: Date): { date: number; time: number } {
  const year = Math.max(1980, d.getFullYear());
  return {
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | Math.floor(d.getSeconds() / 2),
  };
}

const SHORT_INVALID = /[^A-Z0-9!#$%&'()@^_`{}~-]/g;

/** Whether `name` is already a valid upper-case 8.3 name (stored without a long name). */
function isPlainShortName(name: string): boolean {
  return /^[A-Z0-9!#$%&'()@^_`{}~-]{1,8}(\.[A-Z0-9!#$%&'()@^_`{}~-]{1,3})?$/.test(name);
}

function shortField(base: string, ext: string): Buffer {
  return Buffer.from(base.padEnd(8, ' ') + ext.padEnd(3, ' '), 'ascii');
}

export class FatVolume {
  private fatType: 'fat16' | 'fat32' = 'fat32';
  private bytesPerSector = 512;
  private sectorsPerCluster = 1;
  private reservedSectors = 0;
  private numFats = 2;
  private fatSizeSectors = 0;
  private rootEntries = 0;
  private rootCluster = 0;
  private fsInfoSector = 0;
  private activeFats: number[] = [];
  private firstDataSector = 0;
  private clusterCount = 0;
  private nextFreeHint = 2;
  private fat: Buffer = Buffer.alloc(0);

  private constructor(private readonly io: PartitionIo) {}

  /** Reads the boot sector and the first FAT; refuses anything that is not FAT16/FAT32. */
  static async open(io: PartitionIo): Promise<FatVolume> {
    const v = new FatVolume(io);
    await v.load();
    return v;
  }

  private async load(): Promise<void> {
    const bs = await this.io.read(0, 512);
    if (bs[510] !== 0x55 || bs[511] !== 0xaa) throw new FatError('no FAT boot sector (missing 0x55AA signature)');
    this.bytesPerSector = bs.readUInt16LE(11);
    this.sectorsPerCluster = bs[13] ?? 0;
    this.reservedSectors = bs.readUInt16LE(14);
    this.numFats = bs[16] ?? 0;
    this.rootEntries = bs.readUInt16LE(17);
    const tot16 = bs.readUInt16LE(19);
    const fatSz16 = bs.readUInt16LE(22);
    const totalSectors = tot16 || bs.readUInt32LE(32);
    if (![512, 1024, 2048, 4096].includes(this.bytesPerSector) || !this.sectorsPerCluster || !this.numFats || !totalSectors) {
      throw new FatError('not a FAT file system (invalid BIOS parameter block)');
    }
    this.fatSizeSectors = fatSz16 || bs.readUInt32LE(36);
    const rootDirSectors = Math.ceil((this.rootEntries * ENTRY) / this.bytesPerSector);
    this.firstDataSector = this.reservedSectors + this.numFats * this.fatSizeSectors + rootDirSectors;
    this.clusterCount = Math.floor((totalSectors - this.firstDataSector) / this.sectorsPerCluster);
    if (this.clusterCount < 4085) throw new FatError('FAT12 volumes are not supported (a boot partition is FAT16 or FAT32)');
    this.fatType = this.clusterCount < 65525 ? 'fat16' : 'fat32';
    this.activeFats = [...Array(this.numFats).keys()];
    if (this.fatType === 'fat32') {
      const extFlags = bs.readUInt16LE(40);
      if (extFlags & 0x80) this.activeFats = [extFlags & 0x0f];
      this.rootCluster = bs.readUInt32LE(44);
      this.fsInfoSector = bs.readUInt16LE(48);
    }
    const first = this.activeFats[0] ?? 0;
    this.fat = await this.io.read((this.reservedSectors + first * this.fatSizeSectors) * this.bytesPerSector, this.fatSizeSectors * this.bytesPerSector);
  }

  get type(): 'fat16' | 'fat32' {
    return this.fatType;
  }

  private get clusterBytes(): number {
    return this.sectorsPerCluster * this.bytesPerSector;
  }

  private clusterOffset(cluster: number): number {
    return (this.firstDataSector + (cluster - 2) * this.sectorsPerCluster) * this.bytesPerSector;
  }

  private entryOf(cluster: number): number {
    return this.fatType === 'fat32' ? this.fat.readUInt32LE(cluster * 4) & 0x0fffffff : this.fat.readUInt16LE(cluster * 2);
  }

  private isEndOfChain(value: number): boolean {
    return this.fatType === 'fat32' ? value >= 0x0ffffff8 : value >= 0xfff8;
  }

  private setEntry(cluster: number, value: number): void {
    if (this.fatType === 'fat32') {
      const high = this.fat.readUInt32LE(cluster * 4) & 0xf0000000; // the top 4 bits are reserved: keep them
      this.fat.writeUInt32LE((high | (value & 0x0fffffff)) >>> 0, cluster * 4);
    } else this.fat.writeUInt16LE(value & 0xffff, cluster * 2);
  }

  private get endOfChain(): number {
    return this.fatType === 'fat32' ? 0x0fffffff : 0xffff;
  }

  private chain(first: number): number[] {
    const out: number[] = [];
    let c = first;
    while (c >= 2 && c < this.clusterCount + 2 && !this.isEndOfChain(c)) {
      if (out.length > this.clusterCount) throw new FatError('cluster chain loops; run fsck.vfat on the partition');
      out.push(c);
      c = this.entryOf(c);
    }
    return out;
  }

  /** Writes the changed FAT bytes to every active FAT copy. */
  private async flushFat(changed: number[]): Promise<void> {
    const width = this.fatType === 'fat32' ? 4 : 2;
    const sectors = new Set(changed.map((c) => Math.floor((c * width) / this.bytesPerSector)));
    for (const sector of sectors) {
      const bytes = this.fat.subarray(sector * this.bytesPerSector, (sector + 1) * this.bytesPerSector);
      for (const copy of this.activeFats) {
        await this.io.write((this.reservedSectors + copy * this.fatSizeSectors + sector) * this.bytesPerSector, Buffer.from(bytes));
      }
    }
  }

  private async adjustFsInfo(freedMinusAllocated: number): Promise<void> {
    if (this.fatType !== 'fat32' || !this.fsInfoSector || this.fsInfoSector === 0xffff) return;
    const pos = this.fsInfoSector * this.bytesPerSector;
    const s = await this.io.read(pos, 512);
    if (s.readUInt32LE(0) !== 0x41615252 || s.readUInt32LE(484) !== 0x61417272) return;
    const free = s.readUInt32LE(488);
    if (free !== 0xffffffff) s.writeUInt32LE(Math.max(0, free + freedMinusAllocated), 488);
    s.writeUInt32LE(this.nextFreeHint, 492);
    await this.io.write(pos, s);
  }

  private allocate(count: number): number[] {
    const out: number[] = [];
    const last = this.clusterCount + 1;
    let c = Math.min(Math.max(this.nextFreeHint, 2), last);
    for (let scanned = 0; out.length < count && scanned < this.clusterCount; scanned++) {
      if (this.entryOf(c) === 0) out.push(c);
      c = c >= last ? 2 : c + 1;
    }
    if (out.length < count) throw new FatError(`the boot partition is full (needs ${count} more clusters)`);
    out.forEach((cl, i) => this.setEntry(cl, i + 1 < out.length ? (out[i + 1] as number) : this.endOfChain));
    this.nextFreeHint = c;
    return out;
  }

  /** Byte ranges of the root directory, in order. */
  private rootRegions(): { offset: number; length: number; cluster?: number }[] {
    if (this.fatType === 'fat16') {
      const start = (this.reservedSectors + this.numFats * this.fatSizeSectors) * this.bytesPerSector;
      return [{ offset: start, length: this.rootEntries * ENTRY }];
    }
    return this.chain(this.rootCluster).map((c) => ({ offset: this.clusterOffset(c), length: this.clusterBytes, cluster: c }));
  }

  private async readRoot(): Promise<{ slots: { pos: number; raw: Buffer }[] }> {
    const slots: { pos: number; raw: Buffer }[] = [];
    for (const r of this.rootRegions()) {
      const buf = await this.io.read(r.offset, r.length);
      for (let i = 0; i < r.length; i += ENTRY) slots.push({ pos: r.offset + i, raw: buf.subarray(i, i + ENTRY) });
    }
    return { slots };
  }

  private async entries(): Promise<{ files: DirEntryRef[]; slots: { pos: number; raw: Buffer }[] }> {
    const { slots } = await this.readRoot();
    const files: DirEntryRef[] = [];
    let lfnParts: string[] = [];
    let lfnSlots: number[] = [];
    let lfnChecksum = -1;
    for (const { pos, raw } of slots) {
      const first = raw[0] ?? 0;
      if (first === 0x00) break;
      if (first === DELETED) {
        lfnParts = [];
        lfnSlots = [];
        continue;
      }
      const attr = raw[11] ?? 0;
      if (attr === ATTR_LFN) {
        if (first & 0x40) {
          lfnParts = [];
          lfnSlots = [];
          lfnChecksum = raw[13] ?? -1;
        }
        const chars = Buffer.concat([raw.subarray(1, 11), raw.subarray(14, 26), raw.subarray(28, 32)]);
        let part = '';
        for (let i = 0; i < chars.length; i += 2) {
          const code = chars.readUInt16LE(i);
          if (code === 0x0000 || code === 0xffff) break;
          part += String.fromCharCode(code);
        }
        lfnParts[(first & 0x1f) - 1] = part;
        lfnSlots.push(pos);
        continue;
      }
      if (attr & ATTR_VOLUME) {
        lfnParts = [];
        lfnSlots = [];
        continue;
      }
      const base = raw.subarray(0, 8).toString('latin1').trimEnd();
      const ext = raw.subarray(8, 11).toString('latin1').trimEnd();
      const nt = raw[12] ?? 0;
      const shown = (nt & 0x08 ? base.toLowerCase() : base) + (ext ? `.${nt & 0x10 ? ext.toLowerCase() : ext}` : '');
      const longName = lfnParts.length && lfnChecksum === shortNameChecksum(raw.subarray(0, 11)) ? lfnParts.join('') : '';
      files.push({
        name: longName || shown,
        shortName: base + (ext ? `.${ext}` : ''),
        size: raw.readUInt32LE(28),
        isDirectory: (attr & ATTR_DIR) !== 0,
        firstCluster: (this.fatType === 'fat32' ? raw.readUInt16LE(20) << 16 : 0) | raw.readUInt16LE(26),
        slots: [...lfnSlots, pos],
      });
      lfnParts = [];
      lfnSlots = [];
    }
    return { files, slots };
  }

  /** The files and directories in the root directory. */
  async list(): Promise<FatFileInfo[]> {
    return (await this.entries()).files.map(({ name, size, isDirectory }) => ({ name, size, isDirectory }));
  }

  private async find(name: string): Promise<DirEntryRef | undefined> {
    const lower = name.toLowerCase();
    return (await this.entries()).files.find((f) => f.name.toLowerCase() === lower || f.shortName.toLowerCase() === lower);
  }

  async exists(name: string): Promise<boolean> {
    return (await this.find(name)) !== undefined;
  }

  /** Contents of a file in the root directory, or undefined when it does not exist. */
  async readFile(name: string): Promise<Buffer | undefined> {
    const f = await this.find(name);
    if (!f || f.isDirectory) return undefined;
    const parts: Buffer[] = [];
    let remaining = f.size;
    for (const c of this.chain(f.firstCluster)) {
      if (remaining <= 0) break;
      const n = Math.min(remaining, this.clusterBytes);
      parts.push(await this.io.read(this.clusterOffset(c), n));
      remaining -= n;
    }
    if (remaining > 0) throw new FatError(`${name} is shorter on disk than its directory entry says; run fsck.vfat`);
    return Buffer.concat(parts);
  }

  /** Removes a file from the root directory; returns false when there was none. */
  async deleteFile(name: string): Promise<boolean> {
    const f = await this.find(name);
    if (!f) return false;
    if (f.isDirectory) throw new FatError(`${name} is a directory`);
    const freed = this.chain(f.firstCluster);
    for (const c of freed) this.setEntry(c, 0);
    await this.flushFat(freed);
    for (const pos of f.slots) await this.io.write(pos, Buffer.from([DELETED]));
    if (freed.length) this.nextFreeHint = Math.min(this.nextFreeHint, freed[0] as number);
    await this.adjustFsInfo(freed.length);
    return true;
  }

  /** Creates or replaces a file in the root directory. */
  async writeFile(name: string, data: Buffer | string, now = new Date()): Promise<void> {
    const content = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (!name || name.includes('/') || name.length > 255) throw new FatError(`invalid file name "${name}"`);
    await this.deleteFile(name);
    const { files, slots } = await this.entries();
    const needLfn = !isPlainShortName(name);
    const short = needLfn ? this.makeShortName(name, new Set(files.map((f) => f.shortName))) : shortField(...splitShort(name));
    const lfnCount = needLfn ? Math.ceil(name.length / 13) : 0;
    const needed = lfnCount + 1;

    // Clusters for the data (an empty file has none).
    const clusters = content.length ? this.allocate(Math.ceil(content.length / this.clusterBytes)) : [];
    for (let i = 0; i < clusters.length; i++) {
      const chunk = Buffer.alloc(this.clusterBytes);
      content.copy(chunk, 0, i * this.clusterBytes, Math.min(content.length, (i + 1) * this.clusterBytes));
      await this.io.write(this.clusterOffset(clusters[i] as number), chunk);
    }

    // A run of free directory slots (deleted or past the end marker); grow a FAT32 root if needed.
    let run = this.findFreeRun(slots, needed);
    const grown: number[] = [];
    while (run === undefined) {
      if (this.fatType === 'fat16') throw new FatError('the root directory of the boot partition is full');
      const [added] = this.allocate(1) as [number];
      const chainEnd = this.chain(this.rootCluster).at(-1) as number;
      this.setEntry(chainEnd, added);
      grown.push(chainEnd, added);
      await this.io.write(this.clusterOffset(added), Buffer.alloc(this.clusterBytes));
      for (let i = 0; i < this.clusterBytes; i += ENTRY) slots.push({ pos: this.clusterOffset(added) + i, raw: Buffer.alloc(ENTRY) });
      run = this.findFreeRun(slots, needed);
    }
    await this.flushFat([...clusters, ...grown]);
    await this.adjustFsInfo(-(clusters.length + grown.length / 2));

    const checksum = shortNameChecksum(short);
    const positions = run;
    for (let i = 0; i < lfnCount; i++) {
      const seq = lfnCount - i; // stored last part first
      const e = Buffer.alloc(ENTRY, 0);
      e[0] = seq | (i === 0 ? 0x40 : 0);
      e[11] = ATTR_LFN;
      e[13] = checksum;
      const chars: number[] = [];
      for (let k = 0; k < 13; k++) {
        const idx = (seq - 1) * 13 + k;
        chars.push(idx < name.length ? name.charCodeAt(idx) : idx === name.length ? 0x0000 : 0xffff);
      }
      const at = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
      chars.forEach((ch, k) => e.writeUInt16LE(ch, at[k] as number));
      await this.io.write(positions[i] as number, e);
    }
    const e = Buffer.alloc(ENTRY, 0);
    short.copy(e, 0);
    e[11] = ATTR_ARCHIVE;
    const { date, time } = fatDateTime(now);
    e.writeUInt16LE(time, 14);
    e.writeUInt16LE(date, 16);
    e.writeUInt16LE(date, 18);
    const first = clusters[0] ?? 0;
    if (this.fatType === 'fat32') e.writeUInt16LE((first >>> 16) & 0xffff, 20);
    e.writeUInt16LE(time, 22);
    e.writeUInt16LE(date, 24);
    e.writeUInt16LE(first & 0xffff, 26);
    e.writeUInt32LE(content.length, 28);
    await this.io.write(positions[lfnCount] as number, e);
  }

  private findFreeRun(slots: { pos: number; raw: Buffer }[], needed: number): number[] | undefined {
    let run: number[] = [];
    let ended = false;
    for (const s of slots) {
      const first = s.raw[0] ?? 0;
      if (first === 0x00) ended = true;
      if (ended || first === DELETED) {
        run.push(s.pos);
        if (run.length === needed) {
          // Past the end marker, the slot after the run must stay (or become) an end marker: the
          // slots there are all zero already, so nothing else to write.
          return run;
        }
      } else run = [];
    }
    return undefined;
  }

  private makeShortName(name: string, taken: Set<string>): Buffer {
    const upper = name.toUpperCase();
    const dot = upper.lastIndexOf('.');
    const rawBase = (dot > 0 ? upper.slice(0, dot) : upper).replace(/^\.+/, '').replace(/[ .]/g, '');
    const rawExt = dot > 0 ? upper.slice(dot + 1).replace(/ /g, '') : '';
    const base = rawBase.replace(SHORT_INVALID, '_') || 'FILE';
    const ext = rawExt.replace(SHORT_INVALID, '_').slice(0, 3);
    for (let n = 1; n < 1_000_000; n++) {
      const tail = `~${n}`;
      const candidate = base.slice(0, 8 - tail.length) + tail;
      const key = candidate + (ext ? `.${ext}` : '');
      if (!taken.has(key)) return shortField(candidate, ext);
    }
    throw new FatError(`no free short name for ${name}`);
  }
}

function splitShort(name: string): [string, string] {
  const dot = name.indexOf('.');
  return dot < 0 ? [name, ''] : [name.slice(0, dot), name.slice(dot + 1)];
}
