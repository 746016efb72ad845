import { describe, expect, it } from 'vitest';
import { expandHostPattern } from '../../src/inventory/host-ranges.js';
import { InventoryError, parseInventory } from '../../src/inventory/inventory.js';
import { readFileSync } from 'node:fs';

function problems(text: string): string[] {
  try {
    parseInventory(text, 'inv.yaml');
  } catch (e) {
    if (e instanceof InventoryError) return e.problems.map((p) => `${p.line}:${p.col} ${p.message}`);
    throw e;
  }
  throw new Error('expected the inventory to be refused');
}

describe('Ansible host ranges', () => {
  it('expands numeric ranges keeping zero padding', () => {
    expect(expandHostPattern('pi[01:04]')).toEqual(['pi01', 'pi02', 'pi03', 'pi04']);
    expect(expandHostPattern('pi[8:10]')).toEqual(['pi8', 'pi9', 'pi10']);
  });
  it('expands letters, strides and several ranges', () => {
    expect(expandHostPattern('n-[a:c]')).toEqual(['n-a', 'n-b', 'n-c']);
    expect(expandHostPattern('w[1:9:4]')).toEqual(['w1', 'w5', 'w9']);
    expect(expandHostPattern('r[1:2]c[a:b]')).toEqual(['r1ca', 'r1cb', 'r2ca', 'r2cb']);
  });
  it('refuses malformed ranges', () => {
    expect(() => expandHostPattern('pi[4:1]')).toThrow(/starts after it ends/);
    expect(() => expandHostPattern('pi[1-4]')).toThrow(/bracket but no valid range/);
    expect(() => expandHostPattern('pi[a:9]')).toThrow(/numeric/);
  });
});

describe('inventory parsing', () => {
  it('reads the example inventory.yaml shipped at the top of the repository', () => {
    const inv = parseInventory(readFileSync('inventory.yaml', 'utf8'), 'inventory.yaml');
    expect(inv.managers.map((h) => h.name)).toEqual(['pi1']);
    expect(inv.workers.map((h) => h.name)).toEqual(['pi2', 'pi3']);
    expect(inv.hosts.every((h) => h.user === 'pi')).toBe(true);
    expect(inv.settings.openfaas_publish).toBe('ingress');
  });

  it('applies variables with Ansible precedence: all < parent group < child group < host', () => {
    const inv = parseInventory(
      `
all:
  vars: { ansible_user: fromall, pifaas_timezone: UTC, pifaas_docker_install: package }
  children:
    pis:
      vars: { ansible_user: frompis, pifaas_timezone: Europe/Paris }
      children:
        managers:
          hosts:
            m1: { ansible_host: 10.0.0.1 }
        workers:
          vars: { ansible_user: fromworkers }
          hosts:
            w[1:2]: { ansible_port: 2222 }
            w3: { ansible_host: 10.0.0.9, ansible_user: fromhost }
`,
      'inv.yaml',
    );
    const by = Object.fromEntries(inv.hosts.map((h) => [h.name, h]));
    expect(by.m1?.user).toBe('frompis');
    expect(by.w1?.user).toBe('fromworkers');
    expect(by.w3?.user).toBe('fromhost');
    expect(by.w2?.port).toBe(2222);
    expect(by.w1?.address).toBe('w1');
    expect(by.m1?.settings).toEqual({ timezone: 'Europe/Paris', docker_install: 'package' });
    expect(by.w3?.groups).toEqual(['pis', 'workers']);
    expect(inv.workers.map((h) => h.name)).toEqual(['w1', 'w2', 'w3']);
  });

  it('treats top-level groups as children of all', () => {
    const inv = parseInventory('managers:\n  hosts:\n    a:\nworkers:\n  hosts:\n    b:\n', 'inv.yaml');
    expect(inv.hosts.map((h) => `${h.name}:${h.role}`)).toEqual(['a:manager', 'b:worker']);
  });

  it('resolves key paths relative to the inventory and expands ~', () => {
    const inv = parseInventory(
      'all:\n  children:\n    managers:\n      hosts:\n        a: { ansible_ssh_private_key_file: keys/id }\n        b: { ansible_ssh_private_key_file: ~/.ssh/k }\n',
      '/srv/cluster/inv.yaml',
    );
    expect(inv.hosts[0]?.privateKeyFile).toBe('/srv/cluster/keys/id');
    expect(inv.hosts[1]?.privateKeyFile).toMatch(/\/\.ssh\/k$/);
  });
});

describe('inventory errors name file, line and column', () => {
  it('an inventory without managers', () => {
    expect(problems('all:\n  children:\n    workers:\n      hosts:\n        w1:\n')).toEqual([
      '1:1 there is no managers group; add all.children.managers.hosts with at least one host',
    ]);
    expect(problems('all:\n  children:\n    managers:\n      hosts:\n')).toEqual([
      '1:1 the managers group has no hosts; a swarm needs at least one manager',
    ]);
  });

  it('duplicate hosts: the same key twice, a host in both roles, two names for one address', () => {
    expect(problems('all:\n  children:\n    managers:\n      hosts:\n        a:\n        a:\n')).toEqual(['6:9 "a" appears twice in the same mapping (first at line 5); a host or variable is listed once']);
    expect(problems('all:\n  children:\n    managers:\n      hosts:\n        a:\n    workers:\n      hosts:\n        a:\n')).toEqual([
      '5:9 host "a" is in both managers and workers; list it in one of them',
    ]);
    expect(
      problems(
        'all:\n  children:\n    managers:\n      hosts:\n        a: { ansible_host: 10.0.0.1 }\n    workers:\n      hosts:\n        b: { ansible_host: 10.0.0.1 }\n',
      ),
    ).toEqual(['8:28 hosts "a" and "b" both point at 10.0.0.1:22; each host needs its own address']);
  });

  it('an unknown pifaas_ key, reported once at its line even when it reaches several hosts', () => {
    const p = problems('all:\n  vars:\n    pifaas_hostnme: x\n  children:\n    managers:\n      hosts:\n        a:\n        b:\n');
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^3:5 unknown setting "pifaas_hostnme" \(host "a"\); known ones: pifaas_hostname, /);
  });

  it('bad values say what is expected', () => {
    const p = problems(
      'all:\n  children:\n    managers:\n      hosts:\n        a:\n          pifaas_static_ip: 10.0.0.1\n          ansible_port: 70000\n          pifaas_password_hash: hunter2\n',
    );
    expect(p).toEqual([
      '6:29 pifaas_static_ip of host "a": expected an IPv4 address with its prefix length, like 192.168.1.11/24',
      '7:25 ansible_port of host "a": expected a port number from 1 to 65535',
      '8:33 pifaas_password_hash of host "a": expected a crypt(3) hash such as $6$... (make one with `openssl passwd -6`), never a plain password',
    ]);
  });

  it('structure errors: unknown group keys, bad ranges, hosts outside both roles, not YAML', () => {
    expect(problems('all:\n  hostz:\n    a:\n')).toEqual(['2:3 group "all": unknown key "hostz"; a group has only hosts, vars and children']);
    expect(problems('all:\n  children:\n    managers:\n      hosts:\n        pi[3:1]:\n')).toEqual(['5:9 "pi[3:1]": the range starts after it ends']);
    expect(problems('all:\n  hosts:\n    loose:\n  children:\n    managers:\n      hosts:\n        a:\n')).toEqual([
      '3:5 host "loose" is in neither managers nor workers; list it under all.children.managers or all.children.workers',
    ]);
    expect(problems('- just\n- a list\n')).toEqual(['1:1 expected a mapping with an "all" group at the top']);
    expect(problems('all: [unclosed\n')[0]).toMatch(/^\d+:\d+ /);
  });

  it('the error message itself starts with the file and lists each problem as file:line:col', () => {
    try {
      parseInventory('all:\n  hostz: 1\n', 'cluster.yaml');
    } catch (e) {
      expect((e as Error).message).toContain('cluster.yaml:2:3: group "all": unknown key "hostz"');
      expect((e as InventoryError).hint).toMatch(/managers and workers/);
    }
  });
});
