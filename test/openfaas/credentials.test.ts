import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  connectGateway,
  decodeBasicAuthToken,
  encodeBasicAuthToken,
  lookupCredentials,
  openfaasConfigFile,
  resolveGatewayUrl,
  saveCredentials,
} from '../../src/openfaas/credentials.js';

let dir: string;
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 't4-creds-'));
  env = { OPENFAAS_CONFIG: path.join(dir, 'openfaas') };
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

describe('~/.openfaas/config.yml, as faas-cli writes and reads it', () => {
  it('encodes the token as faas-cli does: base64 of user:password', () => {
    // faas-cli's config.EncodeAuth("admin", "pass:word") == "YWRtaW46cGFzczp3b3Jk"
    expect(encodeBasicAuthToken('admin', 'pass:word')).toBe('YWRtaW46cGFzczp3b3Jk');
    expect(decodeBasicAuthToken('YWRtaW46cGFzczp3b3Jk')).toEqual({ username: 'admin', password: 'pass:word' });
  });

  it('saves with mode 0600 in a 0700 folder, in the auths/gateway/auth/token format', async () => {
    const file = await saveCredentials('http://192.168.1.11:8080/', { username: 'admin', password: 's3cret' }, env);
    expect(file).toBe(path.join(dir, 'openfaas', 'config.yml'));
    expect(file).toBe(openfaasConfigFile(env));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    expect(parse(await readFile(file, 'utf8'))).toEqual({
      auths: [{ gateway: 'http://192.168.1.11:8080', auth: 'basic', token: Buffer.from('admin:s3cret').toString('base64') }],
    });
  });

  it('keeps other gateways\' entries and replaces only the one saved', async () => {
    const file = openfaasConfigFile(env);
    await saveCredentials('http://a:8080', { username: 'admin', password: 'one' }, env);
    // An entry written by faas-cli login for another gateway, with an oauth2 token.
    const cfg = parse(await readFile(file, 'utf8'));
    cfg.auths.push({ gateway: 'https://faas.example.com', auth: 'oauth2', token: 'eyJhbGciOi' });
    await writeFile(file, JSON.stringify(cfg), { mode: 0o600 });
    await saveCredentials('http://a:8080', { username: 'admin', password: 'two' }, env);
    await saveCredentials('http://b:8080', { username: 'admin', password: 'three' }, env);
    const auths = parse(await readFile(file, 'utf8')).auths as { gateway: string }[];
    expect(auths.map((a) => a.gateway)).toEqual(['https://faas.example.com', 'http://a:8080', 'http://b:8080']);
    expect(await lookupCredentials('http://A:8080/', env)).toEqual({ username: 'admin', password: 'two' });
    expect(await lookupCredentials('http://b:8080', env)).toEqual({ username: 'admin', password: 'three' });
    // Not basic auth: nothing pifaas can send.
    expect(await lookupCredentials('https://faas.example.com', env)).toBeUndefined();
    expect(await lookupCredentials('http://c:8080', env)).toBeUndefined();
  });

  it('reads a file faas-cli wrote (yaml.v2 style) and refuses a damaged one with its name', async () => {
    const file = openfaasConfigFile(env);
    await saveCredentials('http://x:1', { username: 'u', password: 'p' }, env);
    await writeFile(file, 'auths:\n- gateway: http://127.0.0.1:8080\n  auth: basic\n  token: YWRtaW46cGFzc3dvcmQ=\n');
    expect(await lookupCredentials('http://127.0.0.1:8080', env)).toEqual({ username: 'admin', password: 'password' });
    await writeFile(file, 'auths: [unclosed\n');
    await expect(lookupCredentials('http://127.0.0.1:8080', env)).rejects.toThrow(`${file} is not valid YAML`);
    await writeFile(file, 'auths:\n- gateway: http://127.0.0.1:8080\n  auth: basic\n  token: bm9jb2xvbg==\n');
    await expect(lookupCredentials('http://127.0.0.1:8080', env)).rejects.toThrow(/are damaged/);
  });
});

describe('choosing the gateway like faas-cli (priority.go)', () => {
  it('flag first, then a non-default stack.yml gateway, then OPENFAAS_URL, then the default', () => {
    const e = { OPENFAAS_URL: 'http://pi1:8080' };
    expect(resolveGatewayUrl({ env: {} })).toBe('http://127.0.0.1:8080');
    expect(resolveGatewayUrl({ env: e })).toBe('http://pi1:8080');
    // The default gateway written in stack.yml does not hide OPENFAAS_URL...
    expect(resolveGatewayUrl({ stackGateway: 'http://127.0.0.1:8080', env: e })).toBe('http://pi1:8080');
    // ...but a real one does.
    expect(resolveGatewayUrl({ stackGateway: 'http://pi9:8080', env: e })).toBe('http://pi9:8080');
    expect(resolveGatewayUrl({ flag: 'pi2:31112', stackGateway: 'http://pi9:8080', env: e })).toBe('http://pi2:31112');
  });

  it('connects with the credentials saved for that exact gateway', async () => {
    await saveCredentials('http://pi1:8080', { username: 'admin', password: 'pw1' }, env);
    const c = await connectGateway({ env: { ...env, OPENFAAS_URL: 'http://PI1:8080/' } });
    expect(c.url).toBe('http://pi1:8080');
    expect(c.hasCredentials).toBe(true);
    const other = await connectGateway({ flag: 'http://pi2:8080', env });
    expect(other.hasCredentials).toBe(false);
  });
});
