import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LocalOperator } from '../../src/operator/local-operator.js';
import { CommandFailedError, CommandTimeoutError } from '../../src/operator/operator.js';
import { shellJoin, shellQuote } from '../../src/operator/shell-quote.js';

describe('local operator (the same command runner as the SSH one)', () => {
  const op = new LocalOperator({ name: 'here' });

  it('runs a command and returns its output and exit code', async () => {
    const r = await op.run('echo out; echo err >&2; exit 3', { check: false });
    expect(r).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  it('throws an error naming the node, the command and its stderr on failure', async () => {
    const e = await op.run('echo "no such thing" >&2; exit 7').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandFailedError);
    expect((e as Error).message).toBe('here: `echo "no such thing" >&2; exit 7` failed with exit code 7:\n  no such thing');
  });

  it('feeds stdin from a string or a stream', async () => {
    expect((await op.run('tr a-z A-Z', { stdin: 'hello' })).stdout).toBe('HELLO');
    expect((await op.run('wc -c', { stdin: Readable.from([Buffer.alloc(100_000, 1)]) })).stdout.trim()).toBe('100000');
  });

  it('stops a command that runs past its timeout', async () => {
    const started = Date.now();
    await expect(op.run('sleep 5', { timeoutMs: 300 })).rejects.toBeInstanceOf(CommandTimeoutError);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('writes files atomically with a mode, creating folders, and reads them back (undefined when absent)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'pifaas-op-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'a b', "it's.txt");
    await op.writeFile(file, Buffer.from([0, 1, 2, 255]), { mode: 0o600 });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await op.readFile(file)).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(await op.readFile(path.join(dir, 'missing'))).toBeUndefined();
    const src = path.join(dir, 'src.bin');
    await writeFile(src, 'copied');
    await op.copyFile(src, path.join(dir, 'dst', 'copy.bin'));
    expect(await readFile(path.join(dir, 'dst', 'copy.bin'), 'utf8')).toBe('copied');
  });
});

describe('shell quoting', () => {
  it('round-trips any string through sh', async () => {
    const op = new LocalOperator();
    const words = ['plain', '', "it's", 'a b', '$HOME', '`x`', '"q"', 'new\nline', '*'];
    const r = await op.run(`printf '%s\\0' ${shellJoin(words)}`);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(words);
    expect(shellQuote('safe-word_1.2/x')).toBe('safe-word_1.2/x');
  });
});
