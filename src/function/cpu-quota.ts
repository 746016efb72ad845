// Why: a container's CPU limit (`docker run --cpus`, a stack.yml `limits.cpu` on Swarm or Kubernetes)
// is a CFS quota in the process's cgroup, which os.availableParallelism() does not see (it counts the
// CPUs the process may run on). Inference threads beyond the quota only wait for it and get throttled
// in the middle of a run, so the function sizes its thread pools by the smaller of the two.
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface CpuQuota {
  /** CPU time allowed per period, in microseconds. */
  quotaUs: number;
  periodUs: number;
}

/** Whole cores a quota amounts to (rounded up, at least 1), never more than the CPUs available. */
export function coresWithin(quota: CpuQuota | undefined, available: number): number {
  if (!quota || quota.quotaUs <= 0 || quota.periodUs <= 0) return available;
  return Math.max(1, Math.min(available, Math.ceil(quota.quotaUs / quota.periodUs)));
}

/**
 * The CPU quota of the cgroup a process is in, from its /proc/<pid>/cgroup text: cgroup v2's
 * `cpu.max` ("max 100000" is no limit) or v1's `cpu.cfs_quota_us` (-1 is no limit) and
 * `cpu.cfs_period_us`. Inside a container the cgroup namespace makes its own cgroup the root ("/").
 */
export function cgroupCpuQuota(procCgroup: string, read: (file: string) => string | undefined, root = '/sys/fs/cgroup'): CpuQuota | undefined {
  // Where the host's cgroup namespace is shared, the path is the host's, but a container has its own
  // cgroup mounted at the root: try the path, then the root.
  const dirs = (mount: string, dir: string) => (dir === '/' ? [mount] : [`${mount}${dir}`, mount]);
  for (const line of procCgroup.split('\n')) {
    const [id, controllers, dir] = line.split(':');
    if (dir === undefined) continue;
    if (id === '0' && controllers === '') {
      for (const d of dirs(root, dir)) {
        const max = read(`${d}/cpu.max`)?.trim().split(/\s+/);
        if (!max) continue;
        if (max[0] !== 'max' && max[1]) return { quotaUs: Number(max[0]), periodUs: Number(max[1]) };
        break;
      }
    } else if (controllers?.split(',').includes('cpu')) {
      for (const d of dirs(`${root}/${controllers}`, dir)) {
        const quota = read(`${d}/cpu.cfs_quota_us`);
        if (quota === undefined) continue;
        const quotaUs = Number(quota.trim());
        const periodUs = Number(read(`${d}/cpu.cfs_period_us`)?.trim());
        if (quotaUs > 0 && periodUs > 0) return { quotaUs, periodUs };
        break;
      }
    }
  }
  return undefined;
}

let cached: number | undefined;

/** Cores this process can use: its CPUs, capped by its cgroup's CPU quota (read once). */
export function usableCores(): number {
  cached ??= coresWithin(cgroupCpuQuota(readOrUndefined('/proc/self/cgroup') ?? '', readOrUndefined), os.availableParallelism());
  return cached;
}

function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
