// Why: inventory.yaml is the user's one description of their cluster, and it is a real Ansible YAML
// inventory so the same file drives ansible-playbook. This module reads it the way Ansible does
// (groups under all.children, host ranges, all < parent group < child group < host variable
// precedence) and checks it, reporting every problem with file, line and column and what is expected.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, visit, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import { z } from 'zod';
import { UserError } from '../user-error.js';
import { expandHostPattern, HostRangeError } from './host-ranges.js';
import { PIFAAS_PREFIX, pifaasSettingsSchema, type PifaasSettings } from './pifaas-settings.js';

export type Role = 'manager' | 'worker';

export interface SourcePosition {
  line: number;
  col: number;
}

export interface InventoryHost {
  /** The inventory name (after range expansion). */
  name: string;
  role: Role;
  /** Every group the host belongs to, directly or through a parent, `all` excluded. */
  groups: string[];
  /** ansible_host, or the name itself. */
  address: string;
  /** ansible_port; undefined lets ~/.ssh/config or the default (22) decide. */
  port?: number;
  /** ansible_user; undefined lets ~/.ssh/config or the local user name decide. */
  user?: string;
  /** ansible_ssh_private_key_file, with ~ expanded and relative paths taken from the inventory's folder. */
  privateKeyFile?: string;
  /** ansible_become_password, when the inventory holds one (a secret: never print it). */
  becomePassword?: string;
  /** The pifaas_ settings that apply to this host, prefix removed. */
  settings: PifaasSettings;
  /** Every variable that applies to this host after precedence (raw values). */
  vars: Record<string, unknown>;
  /** Where the host is first listed. */
  position: SourcePosition;
}

export interface Inventory {
  file: string;
  hosts: InventoryHost[];
  managers: InventoryHost[];
  workers: InventoryHost[];
  /** pifaas_ settings from `all` vars: cluster-wide choices such as openfaas_publish. */
  settings: PifaasSettings;
}

export interface InventoryProblem extends SourcePosition {
  message: string;
}

export class InventoryError extends UserError {
  constructor(
    readonly file: string,
    readonly problems: InventoryProblem[],
  ) {
    super(
      `${file} is not a valid inventory:\n` + problems.map((p) => `  ${file}:${p.line}:${p.col}: ${p.message}`).join('\n'),
      'inventory.yaml is an Ansible YAML inventory with groups managers and workers under all.children; see the commented example in the pifaas repository (inventory.yaml)',
    );
  }
}

// ansible_ variables pifaas reads, with their types; other ansible_ variables are passed through untouched.
const ansibleVarsSchema = z.object({
  ansible_host: z.string().min(1, 'expected a host name or IP address').optional(),
  ansible_port: z.coerce.number().int().min(1).max(65535, 'expected a port number from 1 to 65535').optional(),
  ansible_user: z.string().min(1).optional(),
  ansible_ssh_private_key_file: z.string().min(1).optional(),
  ansible_become_password: z.string().optional(),
});

const GROUP_KEYS = new Set(['hosts', 'vars', 'children']);

interface VarEntry {
  value: unknown;
  /** The value's node (for bad values) and the key's node (for unknown names). */
  node: Node | null;
  keyNode: Node | null;
}
type VarMap = Map<string, VarEntry>;

interface GroupInfo {
  vars: VarMap;
  hosts: Set<string>;
  children: Set<string>;
}

interface HostInfo {
  vars: VarMap;
  node: Node | null;
}

class Reader {
  readonly problems: InventoryProblem[] = [];
  readonly groups = new Map<string, GroupInfo>();
  readonly hosts = new Map<string, HostInfo>();

  constructor(
    private readonly lines: LineCounter,
    private readonly doc: Document,
  ) {}

  at(node: Node | null | undefined): SourcePosition {
    const offset = node?.range?.[0] ?? 0;
    return this.lines.linePos(offset);
  }

  problem(node: Node | null | undefined, message: string): void {
    this.problems.push({ ...this.at(node), message });
  }

  group(name: string): GroupInfo {
    let g = this.groups.get(name);
    if (!g) {
      g = { vars: new Map(), hosts: new Set(), children: new Set() };
      this.groups.set(name, g);
    }
    return g;
  }

  readVars(target: VarMap, node: unknown, where: string): void {
    if (node === null || node === undefined || (isScalar(node) && node.value === null)) return;
    if (!isMap(node)) {
      this.problem(node as Node, `${where}: expected a mapping of variable names to values`);
      return;
    }
    for (const pair of node.items as Pair<Node, Node | null>[]) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (!key) {
        this.problem(pair.key, `${where}: a variable name must be a plain string`);
        continue;
      }
      target.set(key, { value: pair.value ? pair.value.toJSON() : null, node: pair.value ?? pair.key, keyNode: pair.key });
    }
  }

  readGroup(name: string, node: unknown, keyNode: Node | null): void {
    const g = this.group(name);
    if (node === null || node === undefined || (isScalar(node) && node.value === null)) return;
    if (!isMap(node)) {
      this.problem((node as Node) ?? keyNode, `group "${name}": expected a mapping with hosts, vars or children`);
      return;
    }
    for (const pair of (node as YAMLMap<Node, Node | null>).items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!GROUP_KEYS.has(key)) {
        this.problem(pair.key, `group "${name}": unknown key "${key}"; a group has only hosts, vars and children`);
        continue;
      }
      if (key === 'vars') this.readVars(g.vars, pair.value, `vars of group "${name}"`);
      else if (key === 'hosts') this.readHosts(g, name, pair.value);
      else this.readChildren(g, name, pair.value);
    }
  }

  readHosts(g: GroupInfo, groupName: string, node: Node | null): void {
    if (node === null || (isScalar(node) && node.value === null)) return;
    if (!isMap(node)) {
      this.problem(node, `hosts of group "${groupName}": expected a mapping of host names (each with its variables or empty)`);
      return;
    }
    for (const pair of (node as YAMLMap<Node, Node | null>).items) {
      const pattern = isScalar(pair.key) ? String(pair.key.value) : '';
      let names: string[];
      try {
        names = expandHostPattern(pattern);
      } catch (e) {
        if (e instanceof HostRangeError) {
          this.problem(pair.key, e.message);
          continue;
        }
        throw e;
      }
      for (const name of names) {
        g.hosts.add(name);
        let h = this.hosts.get(name);
        if (!h) {
          h = { vars: new Map(), node: pair.key };
          this.hosts.set(name, h);
        }
        this.readVars(h.vars, pair.value, `host "${name}"`);
      }
    }
  }

  readChildren(g: GroupInfo, parent: string, node: Node | null): void {
    if (node === null || (isScalar(node) && node.value === null)) return;
    if (!isMap(node)) {
      this.problem(node, `children of group "${parent}": expected a mapping of group names`);
      return;
    }
    for (const pair of (node as YAMLMap<Node, Node | null>).items) {
      const child = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(child)) {
        this.problem(pair.key, `"${child}" is not a valid group name (letters, digits and underscores, not starting with a digit)`);
        continue;
      }
      g.children.add(child);
      this.readGroup(child, pair.value, pair.key);
    }
  }

  /** Finds the YAML node of a host's variable (for error positions). */
  nodeOf(entry: VarEntry | undefined): Node | null {
    return entry?.node ?? null;
  }

  get document(): Document {
    return this.doc;
  }
}

/** Depth of each group below `all` (longest chain), used for Ansible's group variable precedence. */
function groupDepths(groups: Map<string, GroupInfo>): Map<string, number> {
  const depth = new Map<string, number>([['all', 0]]);
  // Relax edges until stable (inventories are small; a cycle is cut off by the iteration limit).
  for (let round = 0; round < groups.size + 1; round++) {
    let changed = false;
    for (const [name, g] of groups) {
      const d = depth.get(name);
      if (d === undefined) continue;
      for (const c of g.children) {
        if ((depth.get(c) ?? -1) < d + 1) {
          depth.set(c, d + 1);
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
  return depth;
}

/** All groups a host belongs to: the ones listing it and every ancestor of those. */
function groupsOfHost(host: string, groups: Map<string, GroupInfo>): Set<string> {
  const parents = new Map<string, string[]>();
  for (const [name, g] of groups) for (const c of g.children) parents.set(c, [...(parents.get(c) ?? []), name]);
  const result = new Set<string>();
  const stack = [...groups].filter(([, g]) => g.hosts.has(host)).map(([n]) => n);
  while (stack.length) {
    const g = stack.pop() as string;
    if (result.has(g)) continue;
    result.add(g);
    stack.push(...(parents.get(g) ?? []));
  }
  result.add('all');
  return result;
}

function expandPath(p: string, inventoryDir: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(homedir(), p.slice(1));
  return path.resolve(inventoryDir, p);
}

function formatIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return issue.message;
  return issue.message.replace(/^Invalid input: /, '');
}

/** Parses inventory text; `file` names it in messages. Throws InventoryError listing every problem. */
export function parseInventory(text: string, file: string): Inventory {
  const lines = new LineCounter();
  // Duplicate keys are found by our own walk (below) so the message can point at the second one.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const reader = new Reader(lines, doc);
  for (const err of doc.errors) {
    reader.problems.push({ ...lines.linePos(err.pos[0]), message: err.message.split('\n')[0] ?? err.message });
  }
  visit(doc, {
    Map(_, map) {
      const first = new Map<string, Node>();
      for (const pair of map.items as Pair<Node, unknown>[]) {
        if (!isScalar(pair.key)) continue;
        const k = String(pair.key.value);
        const earlier = first.get(k);
        if (earlier) {
          reader.problem(pair.key, `"${k}" appears twice in the same mapping (first at line ${reader.at(earlier).line}); a host or variable is listed once`);
        } else first.set(k, pair.key);
      }
    },
  });
  if (reader.problems.length) throw new InventoryError(file, reader.problems);

  const root = doc.contents;
  if (!isMap(root)) {
    throw new InventoryError(file, [{ line: 1, col: 1, message: 'expected a mapping with an "all" group at the top' }]);
  }
  const all = reader.group('all');
  for (const pair of (root as YAMLMap<Node, Node | null>).items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : '';
    if (name !== 'all') all.children.add(name); // a top-level group is a child of all, as in Ansible
    reader.readGroup(name, pair.value, pair.key);
  }

  const depth = groupDepths(reader.groups);
  const inventoryDir = path.dirname(path.resolve(file));
  const hosts: InventoryHost[] = [];
  const byAddress = new Map<string, string>();

  for (const [name, info] of reader.hosts) {
    const memberOf = groupsOfHost(name, reader.groups);
    const isManager = memberOf.has('managers');
    const isWorker = memberOf.has('workers');
    if (isManager && isWorker) {
      reader.problem(info.node, `host "${name}" is in both managers and workers; list it in one of them`);
      continue;
    }
    if (!isManager && !isWorker) {
      reader.problem(info.node, `host "${name}" is in neither managers nor workers; list it under all.children.managers or all.children.workers`);
      continue;
    }
    // Precedence: all, then groups by depth (parents before children), same depth by name, then the host.
    const ordered = [...memberOf].sort((a, b) => (depth.get(a) ?? 0) - (depth.get(b) ?? 0) || a.localeCompare(b));
    const merged: VarMap = new Map();
    for (const g of ordered) for (const [k, v] of reader.groups.get(g)?.vars ?? []) merged.set(k, v);
    for (const [k, v] of info.vars) merged.set(k, v);

    const problemsBefore = reader.problems.length;
    const ansibleRaw: Record<string, unknown> = {};
    const pifaasRaw: Record<string, unknown> = {};
    for (const [k, v] of merged) {
      if (k in ansibleVarsSchema.shape) ansibleRaw[k] = v.value;
      if (k.startsWith(PIFAAS_PREFIX)) pifaasRaw[k.slice(PIFAAS_PREFIX.length)] = v.value;
    }
    const ansible = ansibleVarsSchema.safeParse(ansibleRaw);
    if (!ansible.success) {
      for (const issue of ansible.error.issues) {
        const key = String(issue.path[0]);
        reader.problem(reader.nodeOf(merged.get(key)) ?? info.node, `${key} of host "${name}": ${formatIssue(issue)}`);
      }
    }
    const settings = pifaasSettingsSchema.safeParse(pifaasRaw);
    if (!settings.success) {
      for (const issue of settings.error.issues) {
        if (issue.code === 'unrecognized_keys') {
          for (const k of issue.keys) {
            reader.problem(
              merged.get(PIFAAS_PREFIX + k)?.keyNode ?? info.node,
              `unknown setting "${PIFAAS_PREFIX}${k}" (host "${name}"); known ones: ${Object.keys(pifaasSettingsSchema.shape)
                .map((s) => PIFAAS_PREFIX + s)
                .join(', ')}`,
            );
          }
        } else {
          const key = PIFAAS_PREFIX + String(issue.path[0]);
          reader.problem(reader.nodeOf(merged.get(key)) ?? info.node, `${key} of host "${name}": ${formatIssue(issue)}`);
        }
      }
    }
    if (reader.problems.length > problemsBefore || !ansible.success || !settings.success) continue;

    const a = ansible.data;
    const address = a.ansible_host ?? name;
    const endpoint = `${address}:${a.ansible_port ?? 22}`;
    const other = byAddress.get(endpoint);
    if (other) {
      reader.problem(
        reader.nodeOf(merged.get('ansible_host')) ?? info.node,
        `hosts "${other}" and "${name}" both point at ${endpoint}; each host needs its own address`,
      );
      continue;
    }
    byAddress.set(endpoint, name);
    hosts.push({
      name,
      role: isManager ? 'manager' : 'worker',
      groups: [...memberOf].filter((g) => g !== 'all').sort(),
      address,
      port: a.ansible_port,
      user: a.ansible_user,
      privateKeyFile: a.ansible_ssh_private_key_file ? expandPath(a.ansible_ssh_private_key_file, inventoryDir) : undefined,
      becomePassword: a.ansible_become_password,
      settings: settings.data,
      vars: Object.fromEntries([...merged].map(([k, v]) => [k, v.value])),
      position: reader.at(info.node),
    });
  }

  const allSettings = pifaasSettingsSchema.safeParse(
    Object.fromEntries(
      [...all.vars].filter(([k]) => k.startsWith(PIFAAS_PREFIX)).map(([k, v]) => [k.slice(PIFAAS_PREFIX.length), v.value]),
    ),
  );
  if (!allSettings.success) {
    for (const issue of allSettings.error.issues) {
      const keys = issue.code === 'unrecognized_keys' ? issue.keys : [String(issue.path[0])];
      for (const k of keys) {
        const entry = all.vars.get(PIFAAS_PREFIX + k);
        reader.problem(
          issue.code === 'unrecognized_keys' ? (entry?.keyNode ?? null) : (entry?.node ?? null),
          issue.code === 'unrecognized_keys' ? `unknown setting "${PIFAAS_PREFIX}${k}"` : `${PIFAAS_PREFIX}${k}: ${formatIssue(issue)}`,
        );
      }
    }
  }
  const managers = hosts.filter((h) => h.role === 'manager');
  if (reader.problems.length === 0 && managers.length === 0) {
    const managersGroup = reader.groups.get('managers');
    reader.problem(
      null,
      managersGroup
        ? 'the managers group has no hosts; a swarm needs at least one manager'
        : 'there is no managers group; add all.children.managers.hosts with at least one host',
    );
  }
  if (reader.problems.length) {
    // A bad value in group or `all` vars is reported once, not once per host it reaches.
    const seen = new Set<string>();
    const unique = reader.problems.filter((p) => {
      const key = `${p.line}:${p.col}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    unique.sort((x, y) => x.line - y.line || x.col - y.col);
    throw new InventoryError(file, unique);
  }
  return {
    file,
    hosts,
    managers,
    workers: hosts.filter((h) => h.role === 'worker'),
    settings: allSettings.success ? allSettings.data : {},
  };
}

/** Reads and parses an inventory file. */
export async function loadInventory(file: string): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT' ? `inventory file ${file} does not exist` : `cannot read inventory file ${file}: ${(e as Error).message}`,
      'pass the path of your inventory.yaml; the pifaas repository has a commented example to copy',
    );
  }
  return parseInventory(text, file);
}

/** Picks hosts by name (for --host); an unknown name is an error listing the known ones. */
export function selectHosts(inventory: Inventory, names: string[] | undefined): InventoryHost[] {
  if (!names || names.length === 0) return inventory.hosts;
  const known = new Map(inventory.hosts.map((h) => [h.name, h]));
  return names.map((n) => {
    const h = known.get(n);
    if (!h) {
      throw new UserError(`host "${n}" is not in ${inventory.file}`, `hosts there: ${[...known.keys()].join(', ')}`);
    }
    return h;
  });
}
