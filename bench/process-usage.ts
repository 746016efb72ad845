// Why: a function may run as several processes (PIFAAS_PROCESSES), and the benchmarks charge it for
// all of them: the CPU time and resident memory of a process and its descendants, from /proc (Linux).
import { readdir, readFile } from 'node:fs/promises';

/** The pids of a process and its descendants. */
async function processTree(pid: number): Promise<number[]> {
  const out = [pid];
  for (const task of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const children = (await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '')).trim();
    for (const child of children ? children.split(/\s+/) : []) out.push(...(await processTree(Number(child))));
  }
  return out;
}

/** CPU time (user + system, ms) used so far and resident memory (MB) of a process and its descendants; NaN if the process is gone. */
export async function processTreeUsage(pid: number): Promise<{ cpuMs: number; rssMb: number }> {
  let cpuMs = 0;
  let rssMb = 0;
  for (const [i, p] of (await processTree(pid)).entries()) {
    const fields = (await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '')).replace(/^.*\) /, '').split(' ');
    if (fields.length < 22) {
      if (i === 0) return { cpuMs: NaN, rssMb: NaN };
      continue;
    }
    cpuMs += ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
    rssMb += (Number(fields[21]) * 4096) / 1e6; // resident pages
  }
  return { cpuMs, rssMb };
}
