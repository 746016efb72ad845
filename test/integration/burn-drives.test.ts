// pifaas burn against block devices, run as the real CLI under strace so the tests prove a refused
// drive is never opened for writing: the system drive from drivelist's real list, and a loop device
// we create whose root partition (attached as its own loop device: this kernel makes no partition
// devices for loops) is mounted. Then an unmounted loop device is written for real, verified and
// configured. Needs root, losetup, mount and strace; every loop device and mount is torn down.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as drivelist from 'drivelist';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReleaseImage, mtoolsRead, ROOT_OFFSET } from '../burn/release-images.js';

const isRoot = process.getuid?.() === 0;
const haveTools = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v strace && command -v losetup && command -v mount'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const repo = path.resolve(import.meta.dirname, '../..');
const tsx = path.join(repo, 'node_modules/tsx/dist/loader.mjs');
const cli = path.join(repo, 'test/burn/run-cli.ts');

const dir = mkdtempSync(path.join(tmpdir(), 'pifaas-drives-'));
const loops: string[] = [];
const mounts: string[] = [];
let inventory: string;
let image: string;

function losetup(args: string[]): string {
  const dev = execFileSync('losetup', ['--find', '--show', ...args], { encoding: 'utf8' }).trim();
  loops.push(dev);
  return dev;
}

function detach(dev: string): void {
  spawnSync('losetup', ['-d', dev]);
  loops.splice(loops.indexOf(dev), 1);
}

/** Runs the CLI under strace; returns exit code, stderr and every open() of `device`. */
function burnUnderStrace(device: string, extra: string[]): { code: number | null; stderr: string; opens: string[] } {
  const trace = path.join(dir, `trace-${Date.now()}.log`);
  const r = spawnSync(
    'strace',
    ['-f', '-qq', '-e', 'trace=open,openat,openat2', '-o', trace, process.execPath, '--import', tsx, cli, 'burn', inventory, '--image', image, '--host', 'pi1', '--device', device, ...extra],
    { encoding: 'utf8', cwd: dir, env: { ...process.env, PIFAAS_USER_PASSWORD: 'a-password-for-tests' }, timeout: 120_000 },
  );
  const opens = readFileSync(trace, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`"${device}"`));
  rmSync(trace, { force: true });
  return { code: r.status, stderr: r.stderr, opens };
}

const writeOpens = (opens: string[]) => opens.filter((l) => /O_WRONLY|O_RDWR/.test(l));

describe.skipIf(!isRoot || !haveTools)('pifaas burn --device (block devices)', () => {
  beforeAll(() => {
    image = buildReleaseImage('bookworm', dir);
    inventory = path.join(dir, 'inventory.yaml');
    writeFileSync(inventory, 'all:\n  children:\n    managers:\n      hosts:\n        pi1: { pifaas_static_ip: 10.0.0.11/24, pifaas_gateway: 10.0.0.1 }\n');
  }, 60_000);
  afterAll(() => {
    for (const m of mounts.reverse()) spawnSync('umount', [m]);
    for (const l of [...loops]) detach(l);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses the system drive from drivelist before opening it for writing', async () => {
    const system = (await drivelist.list()).find((d) => d.isSystem);
    expect(system, 'drivelist lists the system drive').toBeDefined();
    const r = burnUnderStrace(system!.device, ['--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: refusing to write ${system!.device}`);
    expect(r.stderr).toContain(`${system!.device} is a system drive`);
    expect(writeOpens(r.opens)).toEqual([]);
  });

  it('refuses a loop device whose ext4 root partition is mounted, before opening it for writing', () => {
    const card = path.join(dir, 'card.img');
    execFileSync('cp', [image, card]);
    const whole = losetup([card]);
    const rootPart = losetup(['-o', String(ROOT_OFFSET), card]);
    const mnt = path.join(dir, 'mnt');
    mkdirSync(mnt, { recursive: true });
    execFileSync('mount', ['-t', 'ext4', rootPart, mnt]);
    mounts.push(mnt);
    try {
      const r = burnUnderStrace(whole, ['--yes']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`error: refusing to write ${whole}`);
      expect(r.stderr).toContain(`is mounted at ${mnt}`);
      expect(writeOpens(r.opens)).toEqual([]);
    } finally {
      execFileSync('umount', [mnt]);
      mounts.pop();
      detach(rootPart);
      detach(whole);
    }
  });

  it('asks before writing (and writes nothing without an answer), then writes, verifies and configures an unmounted loop device', () => {
    const card = path.join(dir, 'blank-card.img');
    execFileSync('truncate', ['-s', '120M', card]);
    const dev = losetup([card]);
    try {
      const unconfirmed = burnUnderStrace(dev, []);
      expect(unconfirmed.code).toBe(1);
      expect(unconfirmed.stderr).toContain(`error: not writing ${dev}: not confirmed`);
      expect(writeOpens(unconfirmed.opens)).toEqual([]);

      const r = burnUnderStrace(dev, ['--yes', '--json']);
      expect(r.stderr).not.toContain('error:');
      expect(r.code).toBe(0);
      expect(writeOpens(r.opens).length).toBeGreaterThan(0);
    } finally {
      detach(dev);
    }
    const written = readFileSync(card);
    const source = readFileSync(image);
    // Everything outside the boot and root partitions is the image's.
    expect(written.subarray(0, 8192 * 512).equals(source.subarray(0, 8192 * 512))).toBe(true);
    const toml = mtoolsRead(card, 'custom.toml');
    expect(toml).toContain('[system]\nhostname = "pi1"\n');
    expect(mtoolsRead(card, 'cmdline.txt')).toContain(' cgroup_enable=memory cgroup_memory=1\n');
    expect(mtoolsRead(card, 'userconf.txt')).toMatch(/^pi:\$6\$/);
  });
});
