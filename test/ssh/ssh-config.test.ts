import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSshConfig, resolveSshTarget } from '../../src/ssh/ssh-config.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function config(text: string) {
  const dir = await mkdtemp(path.join(tmpdir(), 'pifaas-sshcfg-'));
  dirs.push(dir);
  const file = path.join(dir, 'config');
  await writeFile(file, text);
  return loadSshConfig(file);
}

describe('ssh config resolution', () => {
  it('fills HostName, User, Port, IdentityFile and UserKnownHostsFile from ~/.ssh/config', async () => {
    const src = await config(`
Host pi1
  HostName 192.168.1.11
  User pi
  Port 2222
  IdentityFile ~/.ssh/pi_key
  IdentityFile %d/.ssh/other_%r
  UserKnownHostsFile ~/.ssh/known_pis
Host *
  User fallback
`);
    const t = resolveSshTarget({ address: 'pi1' }, src);
    expect(t).toMatchObject({ alias: 'pi1', hostname: '192.168.1.11', port: 2222, user: 'pi', explicitIdentity: true, proxyJump: [] });
    expect(t.identityFiles).toEqual([path.join(homedir(), '.ssh/pi_key'), path.join(homedir(), '.ssh/other_pi')]);
    expect(t.knownHostsFiles).toEqual([path.join(homedir(), '.ssh/known_pis')]);
  });

  it('lets inventory values win over the config (as Ansible passes them to ssh)', async () => {
    const src = await config('Host pi1\n  HostName 192.168.1.11\n  User pi\n  Port 2222\n  IdentityFile ~/.ssh/pi_key\n');
    const t = resolveSshTarget({ address: 'pi1', user: 'admin', port: 22, privateKeyFile: '/keys/inv' }, src);
    expect(t).toMatchObject({ hostname: '192.168.1.11', port: 22, user: 'admin' });
    expect(t.identityFiles[0]).toBe('/keys/inv');
  });

  it("falls back to OpenSSH's defaults: port 22, the local user, ~/.ssh/id_* keys, ~/.ssh/known_hosts", async () => {
    const src = await config('Host other\n  User x\n');
    const t = resolveSshTarget({ address: '10.0.0.5' }, src);
    expect(t).toMatchObject({ hostname: '10.0.0.5', port: 22, user: userInfo().username, explicitIdentity: false });
    expect(t.identityFiles).toEqual(['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => path.join(homedir(), '.ssh', f)));
    expect(t.knownHostsFiles).toEqual([path.join(homedir(), '.ssh', 'known_hosts')]);
  });

  it('matches wildcard Host patterns and resolves ProxyJump hops through the same config', async () => {
    const src = await config(`
Host bastion
  HostName 203.0.113.7
  User jump
  Port 2200
Host pi*
  ProxyJump bastion,ops@10.0.0.1:2022
  User pi
`);
    const t = resolveSshTarget({ address: 'pi3' }, src);
    expect(t.user).toBe('pi');
    expect(t.proxyJump.map((j) => [j.hostname, j.port, j.user])).toEqual([
      ['203.0.113.7', 2200, 'jump'],
      ['10.0.0.1', 2022, 'ops'],
    ]);
  });

  it('treats a missing config file as empty and a ProxyJump loop as an error naming the file', async () => {
    expect(loadSshConfig('/nonexistent/pifaas/config').config).toBeUndefined();
    const src = await config('Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n');
    expect(() => resolveSshTarget({ address: 'a' }, src)).toThrow(/ProxyJump for .* loops/);
  });
});
