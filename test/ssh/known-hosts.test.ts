import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fingerprintOf, hostsFieldMatches, KnownHosts, keyTypeOf, knownHostName } from '../../src/ssh/known-hosts.js';

/** An SSH wire-format public key blob of a given type (content is random). */
function keyBlob(type: string): Buffer {
  const t = Buffer.from(type);
  const body = randomBytes(32);
  const len = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return Buffer.concat([len(t.length), t, len(body.length), body]);
}

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tmpDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pifaas-kh-'));
  dirs.push(dir);
  return dir;
}

async function tmpFile(text: string): Promise<string> {
  const dir = await tmpDir();
  const file = path.join(dir, 'known_hosts');
  await writeFile(file, text);
  return file;
}

describe('known_hosts', () => {
  const ed = keyBlob('ssh-ed25519');
  const other = keyBlob('ssh-ed25519');

  it('names hosts like OpenSSH: bare on port 22, [host]:port otherwise', () => {
    expect(knownHostName('pi1.local', 22)).toBe('pi1.local');
    expect(knownHostName('10.0.0.5', 2222)).toBe('[10.0.0.5]:2222');
  });

  it('reads the key type and prints SHA256 fingerprints without padding', () => {
    expect(keyTypeOf(ed)).toBe('ssh-ed25519');
    expect(fingerprintOf(ed)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('matches plain, hashed, wildcard and negated host fields', () => {
    expect(hostsFieldMatches('pi1,pi2', ['pi2'])).toBe(true);
    expect(hostsFieldMatches(hashed('[10.0.0.5]:2222'), ['[10.0.0.5]:2222'])).toBe(true);
    expect(hostsFieldMatches(hashed('10.0.0.5'), ['10.0.0.6'])).toBe(false);
    expect(hostsFieldMatches('*.local,!bad.local', ['pi3.local'])).toBe(true);
    expect(hostsFieldMatches('*.local,!bad.local', ['bad.local'])).toBe(false);
    expect(hostsFieldMatches('10.0.0.?', ['10.0.0.7'])).toBe(true);
  });

  it('knows a recorded key, reports a different one as changed with file and line, and an absent host as unknown', async () => {
    const file = await tmpFile(`# comment\n\n${hashed('pi1')} ssh-ed25519 ${ed.toString('base64')}\n[pi2]:2222 ssh-ed25519 ${ed.toString('base64')}\n`);
    const kh = await KnownHosts.load([file]);
    expect(kh.check('pi1', 22, ed)).toEqual({ status: 'known' });
    expect(kh.check('pi1', 22, other)).toEqual({ status: 'changed', file, line: 3, knownType: 'ssh-ed25519' });
    expect(kh.check('pi2', 2222, ed)).toEqual({ status: 'known' });
    expect(kh.check('pi2', 22, ed)).toEqual({ status: 'unknown' });
    expect(kh.keyTypesFor('pi1', 22)).toEqual(['ssh-ed25519']);
  });

  it('treats a host known only with another key type as changed (no silent downgrade)', async () => {
    const rsa = keyBlob('ssh-rsa');
    const file = await tmpFile(`pi1 ssh-rsa ${rsa.toString('base64')}\n`);
    const kh = await KnownHosts.load([file]);
    expect(kh.check('pi1', 22, ed).status).toBe('changed');
  });

  it('refuses keys marked @revoked', async () => {
    const file = await tmpFile(`@revoked * ssh-ed25519 ${ed.toString('base64')}\npi1 ssh-ed25519 ${ed.toString('base64')}\n`);
    const kh = await KnownHosts.load([file]);
    expect(kh.check('pi1', 22, ed)).toMatchObject({ status: 'revoked', line: 1 });
  });

  it('records a new key in the first file, created 0600, readable by the next load', async () => {
    const dir = await tmpDir();
    const file = path.join(dir, 'sub', 'known_hosts');
    const kh = await KnownHosts.load([file]);
    expect(kh.check('10.0.0.9', 2200, ed).status).toBe('unknown');
    await kh.add('10.0.0.9', 2200, ed);
    expect(kh.check('10.0.0.9', 2200, ed).status).toBe('known');
    expect(await readFile(file, 'utf8')).toBe(`[10.0.0.9]:2200 ssh-ed25519 ${ed.toString('base64')}\n`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await KnownHosts.load([file])).check('10.0.0.9', 2200, ed).status).toBe('known');
  });
});
