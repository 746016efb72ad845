// Why: pifaas verifies SSH host keys the way OpenSSH does, in the same known_hosts files, so a key
// accepted by `ssh` is trusted by pifaas and the other way round. Reads plain and hashed (|1|...)
// entries, [host]:port forms, wildcards and negations; a changed key is refused, a new one is
// recorded only when the caller says so (trust on first use).
import { createHash, createHmac } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';

export interface KnownHostEntry {
  file: string;
  line: number;
  marker?: '@revoked' | '@cert-authority';
  hosts: string;
  keyType: string;
  key: string;
}

export type HostKeyStatus =
  | { status: 'known' }
  | { status: 'unknown' }
  /** A different key is recorded for this host (possible man-in-the-middle, or a reinstalled node). */
  | { status: 'changed'; file: string; line: number; knownType: string }
  | { status: 'revoked'; file: string; line: number };

/** The host name as written in known_hosts: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key type inside an SSH wire-format public key ("ssh-ed25519", "ssh-rsa", ...). */
export function keyTypeOf(key: Buffer): string {
  const len = key.readUInt32BE(0);
  return key.subarray(4, 4 + len).toString('ascii');
}

/** OpenSSH's fingerprint form: SHA256:base64 without padding. */
export function fingerprintOf(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The host key algorithms (ssh2 names) that produce keys of a known_hosts key type. */
export function algorithmsForKeyType(keyType: string): string[] {
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [keyType];
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

function hashedMatches(entry: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const parts = entry.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2] ?? '', 'base64');
  const mac = createHmac('sha1', salt).update(name).digest('base64');
  return mac === parts[3];
}

/** Does the hosts field of an entry (comma list, patterns, !negations, hashes) name this host? */
export function hostsFieldMatches(field: string, names: string[]): boolean {
  if (field.startsWith('|')) return names.some((n) => hashedMatches(field, n));
  let matched = false;
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    const re = globToRegExp(pattern);
    if (names.some((n) => re.test(n))) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((rawLine, i) => {
    const lineText = rawLine.trim();
    if (!lineText || lineText.startsWith('#')) return;
    const fields = lineText.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') marker = fields.shift() as KnownHostEntry['marker'];
    const [hosts, keyType, key] = fields;
    if (!hosts || !keyType || !key) return;
    entries.push({ file, line: i + 1, marker, hosts, keyType, key });
  });
  return entries;
}

/**
 * The known_hosts files of one user: checks keys against all of them and appends new keys to the
 * first one (as OpenSSH does with UserKnownHostsFile).
 */
export class KnownHosts {
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    readonly files: string[],
    private entries: KnownHostEntry[],
  ) {}

  static async load(files: string[]): Promise<KnownHosts> {
    const entries: KnownHostEntry[] = [];
    for (const file of files) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      entries.push(...parseKnownHosts(text, file));
    }
    return new KnownHosts(files, entries);
  }

  private entriesFor(host: string, port: number): KnownHostEntry[] {
    const names = [knownHostName(host, port)];
    return this.entries.filter((e) => e.marker !== '@cert-authority' && hostsFieldMatches(e.hosts, names));
  }

  /** The key types recorded for a host, so the SSH handshake can ask for one of those. */
  keyTypesFor(host: string, port: number): string[] {
    return [...new Set(this.entriesFor(host, port).filter((e) => !e.marker).map((e) => e.keyType))];
  }

  check(host: string, port: number, key: Buffer): HostKeyStatus {
    const keyType = keyTypeOf(key);
    const keyB64 = key.toString('base64');
    const entries = this.entriesFor(host, port);
    const revoked = entries.find((e) => e.marker === '@revoked' && e.key === keyB64);
    if (revoked) return { status: 'revoked', file: revoked.file, line: revoked.line };
    const plain = entries.filter((e) => !e.marker);
    if (plain.some((e) => e.keyType === keyType && e.key === keyB64)) return { status: 'known' };
    const other = plain.find((e) => e.keyType === keyType) ?? plain[0];
    if (other) return { status: 'changed', file: other.file, line: other.line, knownType: other.keyType };
    return { status: 'unknown' };
  }

  /** Records a key (appends `host type key` to the first file, created 0600 in a 0700 folder). */
  add(host: string, port: number, key: Buffer): Promise<void> {
    const file = this.files[0];
    if (!file) return Promise.reject(new Error('no known_hosts file to record the host key in'));
    const entry: KnownHostEntry = { file, line: 0, hosts: knownHostName(host, port), keyType: keyTypeOf(key), key: key.toString('base64') };
    this.entries.push(entry);
    this.writes = this.writes.then(async () => {
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await appendFile(file, `${entry.hosts} ${entry.keyType} ${entry.key}\n`, { mode: 0o600 });
    });
    return this.writes;
  }
}
