// Provision time for 1, 3 and 6 lab nodes in one run (fresh lab each: Docker installed and running,
// no swarm), printed with t(n)/t(1). Nodes are provisioned in parallel, so the target is
// t(6)/t(1) <= 2. Needs root (the lab). Run: sudo npx tsx bench/provision-scaling.ts
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadInventory } from '../src/inventory/inventory.js';
import { labDown, labUp } from '../src/lab/lab.js';
import { InventoryConnector } from '../src/ssh/inventory-connect.js';
import { provision } from '../src/swarm/provision.js';

const SIZES = (process.env.BENCH_NODES ?? '1,3,6').split(',').map(Number);

async function timeProvision(nodes: number): Promise<{ nodes: number; seconds: number; rerunSeconds: number }> {
  const name = `t3b${nodes}`;
  const dir = await mkdtemp(path.join(tmpdir(), `pifaas-bench-${name}-`));
  try {
    const lab = await labUp({ name, nodes, subnet: `10.93.${20 + nodes}.0/24`, dir });
    const inventory = await loadInventory(lab.inventoryFile);
    const run = async () => {
      const started = process.hrtime.bigint();
      const r = await provision(inventory, { connector: new InventoryConnector(inventory), renderer: 'silent' });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (!r.ok) throw new Error(`provision of ${nodes} node(s) failed: ${JSON.stringify(r.nodes.map((n) => n.error?.message).filter(Boolean))}`);
      return seconds;
    };
    const seconds = await run();
    const rerunSeconds = await run(); // idempotent re-run: nothing to change
    return { nodes, seconds, rerunSeconds };
  } finally {
    await labDown(name);
    await rm(dir, { recursive: true, force: true });
  }
}

const results = [];
for (const n of SIZES) results.push(await timeProvision(n));
const base = results[0]?.seconds ?? 1;
console.log('nodes  provision (s)  t(n)/t(1)  re-run (s)');
for (const r of results) {
  console.log(`${String(r.nodes).padStart(5)}  ${r.seconds.toFixed(2).padStart(13)}  ${(r.seconds / base).toFixed(2).padStart(9)}  ${r.rerunSeconds.toFixed(2).padStart(10)}`);
}
const last = results.at(-1);
if (last && results.length > 1) console.log(`t(${last.nodes})/t(${results[0]?.nodes}) = ${(last.seconds / base).toFixed(2)} (target <= 2)`);
