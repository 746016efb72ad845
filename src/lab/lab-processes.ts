// Why: a lab node is a set of namespaces with daemons in them (sshd, dockerd, containerd, shims and
// their containers). Tearing it down means finding exactly those processes - the ones inside the
// node's network or mount namespace, and their descendants - and nothing else on the machine.
import { readFileSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';

export interface ProcInfo {
  pid: number;
  ppid: number;
  netNs?: number;
  mntNs?: number;
}

function nsInode(link: string): number | undefined {
  const m = /\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

/** The namespace inode of one process ("net" or "mnt"), or undefined if it is gone. */
export async function namespaceOf(pid: number, kind: 'net' | 'mnt' | 'uts'): Promise<number | undefined> {
  try {
    return nsInode(await readlink(`/proc/${pid}/ns/${kind}`));
  } catch {
    return undefined;
  }
}

export async function listProcesses(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.push({ pid, ppid, netNs: await namespaceOf(pid, 'net'), mntNs: await namespaceOf(pid, 'mnt') });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** The command line of a process (NUL-separated arguments joined by spaces), '' if gone. */
export async function commandLineOf(pid: number): Promise<string> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Processes inside any of the given namespaces, plus all their descendants (container processes). */
export function processesOf(all: ProcInfo[], netNs: Set<number>, mntNs: Set<number>, extraPids: number[] = []): number[] {
  const self = process.pid;
  const chosen = new Set<number>(extraPids.filter((p) => all.some((q) => q.pid === p)));
  for (const p of all) {
    if ((p.netNs !== undefined && netNs.has(p.netNs)) || (p.mntNs !== undefined && mntNs.has(p.mntNs))) chosen.add(p.pid);
  }
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) {
      if (!chosen.has(p.pid) && chosen.has(p.ppid)) {
        chosen.add(p.pid);
        grew = true;
      }
    }
  }
  chosen.delete(self);
  chosen.delete(1);
  return [...chosen];
}

/** Running (a zombie waiting for its parent counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** SIGTERM, wait up to graceMs, then SIGKILL whatever is left. */
export async function terminate(pids: number[], graceMs = 3000): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(alive)) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids.filter(alive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  const killDeadline = Date.now() + 5000;
  while (Date.now() < killDeadline && pids.some(alive)) await new Promise((r) => setTimeout(r, 50));
}
