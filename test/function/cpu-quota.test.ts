// A container's CPU limit caps the function's inference threads: the quota is read from the cgroup
// (v1 and v2 layouts, host or private cgroup namespace), and a real function process started in a
// cgroup limited to one CPU reports one inference at a time on one thread in /_/health.
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { cgroupCpuQuota, coresWithin } from '../../src/function/cpu-quota.js';
import { childEnv, getJson, MAIN_TS, spawnChild, type Child } from './helpers.js';

describe('CPU quota of a cgroup', () => {
  it('counts whole cores, rounded up, never more than the CPUs there are', () => {
    expect(coresWithin(undefined, 4)).toBe(4);
    expect(coresWithin({ quotaUs: 100_000, periodUs: 100_000 }, 4)).toBe(1);
    expect(coresWithin({ quotaUs: 150_000, periodUs: 100_000 }, 4)).toBe(2);
    expect(coresWithin({ quotaUs: 50_000, periodUs: 100_000 }, 4)).toBe(1);
    expect(coresWithin({ quotaUs: 800_000, periodUs: 100_000 }, 4)).toBe(4);
  });

  const files = (entries: Record<string, string>) => (file: string) => entries[file];

  it('reads cgroup v2 cpu.max ("max" is no limit), at the process path or, in a container, at the root', () => {
    const v2 = '0::/system.slice/docker-abc.scope\n';
    expect(cgroupCpuQuota(v2, files({ '/sys/fs/cgroup/system.slice/docker-abc.scope/cpu.max': '150000 100000\n' }))).toEqual({ quotaUs: 150_000, periodUs: 100_000 });
    expect(cgroupCpuQuota(v2, files({ '/sys/fs/cgroup/cpu.max': '50000 100000\n' }))).toEqual({ quotaUs: 50_000, periodUs: 100_000 });
    expect(cgroupCpuQuota('0::/\n', files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' }))).toBeUndefined();
    expect(cgroupCpuQuota(v2, files({}))).toBeUndefined();
  });

  it('reads cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us (-1 is no limit), joined controllers too', () => {
    const v1 = '12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n';
    const at = (d: string, quota: string) => files({ [`${d}/cpu.cfs_quota_us`]: quota, [`${d}/cpu.cfs_period_us`]: '100000\n' });
    expect(cgroupCpuQuota(v1, at('/sys/fs/cgroup/cpu,cpuacct/docker/abc', '200000\n'))).toEqual({ quotaUs: 200_000, periodUs: 100_000 });
    expect(cgroupCpuQuota(v1, at('/sys/fs/cgroup/cpu,cpuacct', '100000\n'))).toEqual({ quotaUs: 100_000, periodUs: 100_000 });
    expect(cgroupCpuQuota(v1, at('/sys/fs/cgroup/cpu,cpuacct/docker/abc', '-1\n'))).toBeUndefined();
    expect(cgroupCpuQuota('1:cpu:/\n', at('/sys/fs/cgroup/cpu', '-1\n'))).toBeUndefined();
  });
});

/** A fresh cgroup limited to one CPU, in whichever hierarchy this machine has; undefined if none can be made. */
function oneCpuCgroup(): { procs: string; remove(): void } | undefined {
  const name = `pifaas-test-${process.pid}`;
  const v2 = '/sys/fs/cgroup/cgroup.controllers';
  const dir = existsSync(v2) ? `/sys/fs/cgroup/${name}` : `/sys/fs/cgroup/cpu/${name}`;
  try {
    mkdirSync(dir);
    if (existsSync(v2)) writeFileSync(`${dir}/cpu.max`, '100000 100000');
    else {
      writeFileSync(`${dir}/cpu.cfs_period_us`, '100000');
      writeFileSync(`${dir}/cpu.cfs_quota_us`, '100000');
    }
  } catch {
    return undefined;
  }
  return { procs: `${dir}/cgroup.procs`, remove: () => rmdirSync(dir) };
}

const cgroup = os.availableParallelism() > 1 ? oneCpuCgroup() : undefined;

describe.skipIf(!cgroup)('a function in a cgroup limited to one CPU (needs root, cgroupfs and 2+ CPUs)', () => {
  const children: Child[] = [];
  afterAll(async () => {
    for (const c of children) c.proc.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    cgroup?.remove();
  });

  it('runs one inference at a time on one thread, and says so in /_/health', async () => {
    // The shell moves itself into the cgroup, then becomes the function process.
    const fn = spawnChild(
      'sh',
      ['-c', 'echo $$ > "$1" && exec "$2" --import tsx "$3"', 'sh', cgroup?.procs ?? '', process.execPath, MAIN_TS],
      childEnv({ PIFAAS_FUNCTION: 'faas-resnet', PIFAAS_MODEL: 'mobilenetv2-12-int8', PIFAAS_ENGINE: 'node', port: '0' }),
    );
    children.push(fn);
    const port = (await fn.waitFor(/listening on port (\d+)/, 60_000))[1];
    await fn.waitFor(/ready in \d+ ms/, 60_000);
    const health = await getJson(`http://127.0.0.1:${port}/_/health`);
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ engine: { name: 'onnxruntime-node', parallelRuns: 1 } });
    expect((health.json.models as Array<{ threads: unknown }>)[0]?.threads).toEqual({ alone: 1, aloneOn: 'inference thread', sideBySide: { runs: 1, threads: 1 } });
  }, 90_000);
});
