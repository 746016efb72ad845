// Write throughput of `pifaas burn` (etcher-sdk write, then its verify pass) to an image-file
// target, against `dd bs=4M conv=fsync` of the same decompressed data in the same run, printed as
// ratios. Fair terms: the same bytes from the same warm page cache (the source was just written),
// a fresh target file each time (removed, then `sync`), and both timed until the data is on disk
// (dd's conv=fsync; pifaas's write phase ends with fdatasync). For scale, a plain Node stream copy
// (fs.createReadStream 4 MiB chunks -> fs.createWriteStream, then fdatasync) runs too.
// Runs are interleaved, their order rotating each round, and medians are reported, so a
// neighbour's load hits every side alike. Target: write alone >= 0.9x dd; write + verify reported.
//
//   npx tsx bench/burn-throughput.ts [--size-mb 1024] [--runs 5] [--dir /var/tmp]
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { writeImage } from '../src/burn/image-writer.js';

const { values } = parseArgs({
  options: { 'size-mb': { type: 'string', default: '1024' }, runs: { type: 'string', default: '5' }, dir: { type: 'string', default: tmpdir() } },
});
const sizeMb = Number(values['size-mb']);
const runs = Number(values.runs);
const dir = mkdtempSync(path.join(values.dir as string, 'pifaas-bench-burn-'));
const source = path.join(dir, 'source.img');
const target = path.join(dir, 'target.img');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const mbps = (bytes: number, s: number) => bytes / 1e6 / s;
const secs = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');

async function timeDd(): Promise<number> {
  const t0 = performance.now();
  execFileSync('dd', [`if=${source}`, `of=${target}`, 'bs=4M', 'conv=fsync', 'status=none']);
  return (performance.now() - t0) / 1000;
}

async function timeNodeCopy(): Promise<number> {
  const t0 = performance.now();
  await pipeline(createReadStream(source, { highWaterMark: 4 << 20 }), createWriteStream(target, { highWaterMark: 16 << 20 }));
  const fh = await open(target, 'r+');
  await fh.datasync();
  await fh.close();
  return (performance.now() - t0) / 1000;
}

const dd: number[] = [];
const node: number[] = [];
const write: number[] = [];
const verify: number[] = [];
const cpu: number[] = [];
async function timePifaas(): Promise<void> {
  const c0 = process.cpuUsage();
  const r = await writeImage(source, { kind: 'file', path: target }, { verify: true });
  const c = process.cpuUsage(c0);
  if (r.bytesWritten !== sizeMb * 1024 * 1024) throw new Error(`pifaas wrote ${r.bytesWritten} bytes, not ${sizeMb} MiB`);
  write.push(r.writeSeconds);
  verify.push(r.verifySeconds);
  cpu.push((c.user + c.system) / 1e6);
}

try {
  // Incompressible source: random data, so neither side gains from sparse or zero handling.
  execFileSync('dd', ['if=/dev/urandom', `of=${source}`, 'bs=1M', `count=${sizeMb}`, 'status=none']);
  const bytes = sizeMb * 1024 * 1024;
  const sides: (() => Promise<void>)[] = [async () => void dd.push(await timeDd()), timePifaas, async () => void node.push(await timeNodeCopy())];
  for (let i = 0; i < runs; i++) {
    for (let k = 0; k < sides.length; k++) {
      rmSync(target, { force: true });
      execFileSync('sync');
      await (sides[(i + k) % sides.length] as () => Promise<void>)();
    }
  }
  const ddS = median(dd);
  const wS = median(write);
  const vS = median(verify);
  const nS = median(node);
  const both = median(write.map((w, i) => w + (verify[i] as number)));
  console.log(`image: ${sizeMb} MiB of random data, ${runs} interleaved runs each, medians; target file in ${dir}`);
  console.log(`dd bs=4M conv=fsync        ${ddS.toFixed(2)} s   ${mbps(bytes, ddS).toFixed(0)} MB/s`);
  console.log(`node stream copy + fsync   ${nS.toFixed(2)} s   ${mbps(bytes, nS).toFixed(0)} MB/s   ratio to dd ${(ddS / nS).toFixed(2)}x`);
  console.log(`pifaas write (to disk)     ${wS.toFixed(2)} s   ${mbps(bytes, wS).toFixed(0)} MB/s   ratio to dd ${(ddS / wS).toFixed(2)}x`);
  console.log(`pifaas verify              ${vS.toFixed(2)} s   ${mbps(bytes, vS).toFixed(0)} MB/s`);
  console.log(`pifaas write + verify      ${both.toFixed(2)} s   ${mbps(bytes, both).toFixed(0)} MB/s   ratio to dd ${(ddS / both).toFixed(2)}x`);
  console.log(`pifaas CPU (write + verify) ${median(cpu).toFixed(2)} s`);
  console.log(`raw seconds: dd ${secs(dd)} | node ${secs(node)} | write ${secs(write)} | verify ${secs(verify)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
