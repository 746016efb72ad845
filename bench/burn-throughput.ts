// Write throughput of `pifaas burn` (etcher-sdk write, then its verify pass) to an image-file
// target, against `dd bs=4M` of the same decompressed data in the same run, printed as ratios.
// Runs are interleaved (dd, pifaas, dd, pifaas, ...) and the median of each is reported, so a
// neighbour's load hits both sides alike. Target: write alone >= 0.9x dd.
//
//   npx tsx bench/burn-throughput.ts [--size-mb 1024] [--runs 3] [--dir /var/tmp]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeImage } from '../src/burn/image-writer.js';

const { values } = parseArgs({
  options: { 'size-mb': { type: 'string', default: '1024' }, runs: { type: 'string', default: '3' }, dir: { type: 'string', default: tmpdir() } },
});
const sizeMb = Number(values['size-mb']);
const runs = Number(values.runs);
const dir = mkdtempSync(path.join(values.dir as string, 'pifaas-bench-burn-'));
const source = path.join(dir, 'source.img');
const target = path.join(dir, 'target.img');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const mbps = (bytes: number, s: number) => bytes / 1e6 / s;

try {
  // Incompressible-ish source: random data, so neither side gains from sparse or zero handling.
  execFileSync('dd', ['if=/dev/urandom', `of=${source}`, 'bs=1M', `count=${sizeMb}`, 'status=none']);
  const bytes = sizeMb * 1024 * 1024;
  const dd: number[] = [];
  const write: number[] = [];
  const verify: number[] = [];
  for (let i = 0; i < runs; i++) {
    rmSync(target, { force: true });
    execFileSync('sync');
    const t0 = performance.now();
    // conv=fsync: dd's time includes getting the data to disk, like etcher-sdk's close/fsync.
    execFileSync('dd', [`if=${source}`, `of=${target}`, 'bs=4M', 'conv=fsync', 'status=none']);
    dd.push((performance.now() - t0) / 1000);

    rmSync(target, { force: true });
    execFileSync('sync');
    const r = await writeImage(source, { kind: 'file', path: target }, { verify: true });
    write.push(r.writeSeconds);
    verify.push(r.verifySeconds);
  }
  const ddS = median(dd);
  const wS = median(write);
  const vS = median(verify);
  const both = median(write.map((w, i) => w + (verify[i] as number)));
  console.log(`image: ${sizeMb} MiB of random data, ${runs} interleaved runs each, medians; target file in ${dir}`);
  console.log(`dd bs=4M conv=fsync     ${ddS.toFixed(2)} s   ${mbps(bytes, ddS).toFixed(0)} MB/s`);
  console.log(`pifaas write            ${wS.toFixed(2)} s   ${mbps(bytes, wS).toFixed(0)} MB/s   ratio to dd ${(ddS / wS).toFixed(2)}x`);
  console.log(`pifaas verify           ${vS.toFixed(2)} s   ${mbps(bytes, vS).toFixed(0)} MB/s`);
  console.log(`pifaas write + verify   ${both.toFixed(2)} s   ${mbps(bytes, both).toFixed(0)} MB/s   ratio to dd ${(ddS / both).toFixed(2)}x`);
  console.log(`raw seconds: dd ${dd.map((x) => x.toFixed(2)).join(' ')} | write ${write.map((x) => x.toFixed(2)).join(' ')} | verify ${verify.map((x) => x.toFixed(2)).join(' ')}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
