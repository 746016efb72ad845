// Why: writing an image to the wrong block device destroys it. Before anything is opened for writing,
// the target is checked against drivelist's view (system drive, size, read-only) and against the
// kernel's own tables (/proc/self/mountinfo, /proc/swaps, sysfs holders and partitions, and other
// loop devices over the same file), so a mounted or in-use drive is refused even where drivelist
// does not list it. Every refusal says why; --force overrides, and the caller still asks first.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import * as drivelist from 'drivelist';
import { formatBytes } from '../cli/output.js';
import { UserError } from '../user-error.js';

export const DEFAULT_MAX_DRIVE_BYTES = 128e9;

export interface DriveInfo {
  device: string;
  size: number | null;
  description: string;
  isSystem: boolean;
  isReadOnly: boolean;
  isRemovable: boolean;
  isVirtual: boolean;
  /** Where the drive or one of its partitions is mounted or in use (swap, device-mapper, another loop device). */
  inUse: string[];
  /** The drivelist entry, needed by etcher-sdk's BlockDevice; synthesized for devices drivelist skips (loop). */
  drive: drivelist.Drive;
}

export interface DriveVerdict {
  info: DriveInfo;
  problems: string[];
}

async function readText(p: string): Promise<string | undefined> {
  try {
    return (await readFile(p, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** The block device and its partitions, as sysfs names with their major:minor numbers. */
async function deviceFamily(name: string): Promise<{ name: string; dev: string }[]> {
  const base = `/sys/class/block/${name}`;
  const out: { name: string; dev: string }[] = [];
  const dev = await readText(`${base}/dev`);
  if (dev) out.push({ name, dev });
  for (const entry of await readdir(base).catch(() => [] as string[])) {
    if (!entry.startsWith(name)) continue;
    const pdev = await readText(`${base}/${entry}/dev`);
    if (pdev) out.push({ name: entry, dev: pdev });
  }
  return out;
}

interface MountEntry {
  dev: string;
  source: string;
  target: string;
}

async function mounts(): Promise<MountEntry[]> {
  const text = (await readText('/proc/self/mountinfo')) ?? '';
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ');
      const sep = f.indexOf('-');
      return { dev: f[2] ?? '', target: (f[4] ?? '').replace(/\\040/g, ' '), source: f[sep + 2] ?? '' };
    });
}

async function loopBacking(name: string): Promise<{ file: string; offset: number; size: number } | undefined> {
  const file = await readText(`/sys/class/block/${name}/loop/backing_file`);
  if (!file) return undefined;
  const offset = Number((await readText(`/sys/class/block/${name}/loop/offset`)) ?? 0);
  const size = Number((await readText(`/sys/class/block/${name}/size`)) ?? 0) * 512;
  return { file, offset, size };
}

/** Uses of a block device and its partitions that make writing it unsafe. */
export async function findUses(device: string): Promise<string[]> {
  const name = path.basename(device);
  const family = await deviceFamily(name);
  const devs = new Map(family.map((f) => [f.dev, f.name]));
  const uses: string[] = [];
  const allMounts = await mounts();
  for (const m of allMounts) {
    const who = devs.get(m.dev) ?? family.find((f) => m.source === `/dev/${f.name}`)?.name;
    if (who) uses.push(`/dev/${who} is mounted at ${m.target}`);
  }
  const swaps = ((await readText('/proc/swaps')) ?? '').split('\n').slice(1);
  for (const line of swaps) {
    const src = line.split(/\s+/)[0];
    if (src && family.some((f) => src === `/dev/${f.name}`)) uses.push(`${src} is in use as swap`);
  }
  for (const f of family) {
    const holders = await readdir(`/sys/class/block/${name}${f.name === name ? '' : `/${f.name}`}/holders`).catch(() => [] as string[]);
    for (const h of holders) uses.push(`/dev/${f.name} is held by /dev/${h} (device-mapper, RAID or LVM)`);
  }
  // Loop devices over the same file (a partition attached on its own, as where the kernel makes no
  // partition devices for loops) that are mounted.
  const mine = await loopBacking(name);
  if (mine) {
    for (const other of await readdir('/sys/class/block').catch(() => [] as string[])) {
      if (other === name || !other.startsWith('loop')) continue;
      const b = await loopBacking(other);
      if (!b || b.file !== mine.file) continue;
      const overlaps = b.offset < mine.offset + mine.size && mine.offset < b.offset + b.size;
      if (!overlaps) continue;
      const otherDevs = new Set((await deviceFamily(other)).map((f) => f.dev));
      for (const m of allMounts) if (otherDevs.has(m.dev)) uses.push(`/dev/${other} (same file ${b.file}, offset ${b.offset}) is mounted at ${m.target}`);
    }
  }
  return [...new Set(uses)];
}

/** drivelist's drives plus their in-use state. */
export async function listDrives(): Promise<DriveInfo[]> {
  const drives = await drivelist.list();
  return Promise.all(drives.map(async (d) => toInfo(d, await findUses(d.device))));
}

function toInfo(d: drivelist.Drive, inUse: string[]): DriveInfo {
  const mounted = d.mountpoints.map((m) => `${d.device} is mounted at ${m.path}`);
  return {
    device: d.device,
    size: d.size,
    description: d.description || d.device,
    isSystem: d.isSystem === true,
    isReadOnly: d.isReadOnly === true,
    isRemovable: d.isRemovable,
    isVirtual: d.isVirtual === true,
    inUse: [...new Set([...inUse, ...mounted])],
    drive: d,
  };
}

/** Looks a device up and lists every reason not to write it. Opens nothing for writing. */
export async function checkDrive(devicePath: string, opts: { maxSize: number }): Promise<DriveVerdict> {
  let device: string;
  try {
    device = await realpath(devicePath);
    if (!(await stat(device)).isBlockDevice()) {
      throw new UserError(`${devicePath} is not a block device`, 'to write an image file, use --output DIR instead of --device');
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${devicePath} does not exist`, 'list the drives with `pifaas burn --list-drives`');
  }
  const listed = (await drivelist.list()).find((d) => d.device === device || d.raw === device);
  const uses = await findUses(device);
  let info: DriveInfo;
  if (listed) info = toInfo(listed, uses);
  else {
    const name = path.basename(device);
    const sectors = Number(await readText(`/sys/class/block/${name}/size`));
    const ro = (await readText(`/sys/class/block/${name}/ro`)) === '1';
    const removable = (await readText(`/sys/class/block/${name}/removable`)) === '1';
    const size = Number.isFinite(sectors) ? sectors * 512 : null;
    const drive: drivelist.Drive = {
      enumerator: 'sysfs',
      busType: 'UNKNOWN',
      busVersion: null,
      device,
      devicePath: null,
      raw: device,
      description: name.startsWith('loop') ? `loop device ${name}` : name,
      error: null,
      size,
      blockSize: 512,
      logicalBlockSize: 512,
      mountpoints: [],
      isReadOnly: ro,
      isSystem: false,
      isVirtual: name.startsWith('loop'),
      isRemovable: removable,
      isCard: null,
      isSCSI: null,
      isUSB: null,
      isUAS: null,
      partitionTableType: null,
    };
    info = toInfo(drive, uses);
  }
  const problems: string[] = [];
  if (info.isSystem) problems.push(`${device} is a system drive`);
  problems.push(...info.inUse);
  if (info.isReadOnly) problems.push(`${device} is read-only`);
  if (info.size === null || info.size === 0) problems.push(`${device} reports no size (no medium inserted?)`);
  else if (info.size > opts.maxSize) problems.push(`${device} is ${formatBytes(info.size)}, larger than the ${formatBytes(opts.maxSize)} limit for SD cards`);
  return { info, problems };
}

/** Throws when the drive must not be written (unless forced). */
export function assertWritable(verdict: DriveVerdict, force: boolean): void {
  if (verdict.problems.length === 0 || force) return;
  throw new UserError(
    `refusing to write ${verdict.info.device} (${verdict.info.description}): ${verdict.problems.join('; ')}`,
    'check that this is the SD card you mean; unmount it first, raise --max-size for a large card, or pass --force if you are sure',
  );
}
