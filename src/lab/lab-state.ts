// Why: a lab outlives the process that made it (its nodes are detached daemons), so what `lab up`
// made is recorded on disk; `lab down` reads it to remove everything, even after the process that
// made the lab was killed. One JSON file per lab name under /var/lib/pifaas/labs/.
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

export const LAB_REGISTRY_DIR = process.env.PIFAAS_LAB_REGISTRY ?? '/var/lib/pifaas/labs';

export const labNodeStateSchema = z.object({
  name: z.string(),
  index: z.number().int(),
  role: z.enum(['manager', 'worker']),
  address: z.string(),
  /** Host end of the node's veth pair. */
  veth: z.string(),
  /** The process holding the node's namespaces (a `sleep` named pifaas-lab:<lab>:<index>). */
  holderPid: z.number().int(),
  /** Inode numbers of the node's network and mount namespaces (to find its processes later). */
  netNs: z.number().int(),
  mntNs: z.number().int(),
});

export const labStateSchema = z.object({
  version: z.literal(1),
  name: z.string(),
  subnet: z.string(),
  prefixLength: z.number().int(),
  gateway: z.string(),
  bridge: z.string(),
  dir: z.string(),
  createdAt: z.string(),
  /** The iptables rules this lab inserted (argument lists after -I/-D CHAIN). */
  iptables: z.array(z.object({ table: z.string(), chain: z.string(), rule: z.array(z.string()) })),
  nodes: z.array(labNodeStateSchema),
  /** Did `up` start dockerd on the nodes. */
  docker: z.boolean(),
  managers: z.number().int(),
  user: z.string(),
  /** Nodes (numbers) made without Docker Engine. */
  withoutDocker: z.array(z.number().int()).default([]),
  /** apt sources written on those nodes. */
  aptSources: z.string().optional(),
  /** Nodes (numbers) that look like Raspberry Pis (device tree, boot partition, emulated reboot). */
  pi: z.array(z.number().int()).default([]),
  /** Their device-tree model. */
  piModel: z.string().optional(),
  /** Nodes (numbers) whose kernel starts without the memory cgroup. */
  withoutMemoryCgroup: z.array(z.number().int()).default([]),
  /** false while `up` is making it (a run that was killed leaves it so); absent in older records, which were complete. */
  complete: z.boolean().optional(),
});

export type LabState = z.infer<typeof labStateSchema>;
export type LabNodeState = z.infer<typeof labNodeStateSchema>;

function stateFile(name: string): string {
  return path.join(LAB_REGISTRY_DIR, `${name}.json`);
}

export async function readLabState(name: string): Promise<LabState | undefined> {
  let text: string;
  try {
    text = await readFile(stateFile(name), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const parsed = labStateSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : undefined;
}

export async function writeLabState(state: LabState): Promise<void> {
  await mkdir(LAB_REGISTRY_DIR, { recursive: true, mode: 0o700 });
  const file = stateFile(state.name);
  await writeFile(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

export async function removeLabState(name: string): Promise<void> {
  await rm(stateFile(name), { force: true });
}

export async function listLabStates(): Promise<LabState[]> {
  let files: string[];
  try {
    files = await readdir(LAB_REGISTRY_DIR);
  } catch (e) {
    // No labs were ever made here; any other error (no permission) is not "no labs".
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const states: LabState[] = [];
  for (const f of files.filter((x) => x.endsWith('.json'))) {
    const s = await readLabState(f.slice(0, -5));
    if (s) states.push(s);
  }
  return states;
}
