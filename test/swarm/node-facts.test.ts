// The node facts script, run on this machine through the local operator: Docker's version comes from
// dpkg for a packaged dockerd and from `dockerd --version` for any other one.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalOperator } from '../../src/operator/local-operator.js';
import { dockerVersionOf, gatherFacts } from '../../src/swarm/node-facts.js';

describe('Docker version in the node facts', () => {
  const savedPath = process.env.PATH;
  let dir: string | undefined;
  afterEach(async () => {
    process.env.PATH = savedPath;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('reads the upstream version out of Debian package versions and dockerd --version lines', () => {
    expect(dockerVersionOf('20.10.24+dfsg1-1+deb12u1+b6', undefined)).toBe('20.10.24+dfsg1');
    expect(dockerVersionOf('5:27.3.1-1~debian.12~bookworm', undefined)).toBe('27.3.1');
    expect(dockerVersionOf('26.1.5+dfsg1-9+b9', 'Docker version 1.0.0, build x')).toBe('26.1.5+dfsg1');
    expect(dockerVersionOf('28.0.1', undefined)).toBe('28.0.1');
    expect(dockerVersionOf(undefined, 'Docker version 29.1.2, build 890dcca')).toBe('29.1.2');
    expect(dockerVersionOf(undefined, 'dockerd: command not found')).toBeUndefined();
    expect(dockerVersionOf(undefined, undefined)).toBeUndefined();
  });

  it("gives this machine's packaged dockerd the version it prints itself", async () => {
    const { stdout } = await promisify(execFile)('/usr/sbin/dockerd', ['--version']);
    const facts = await gatherFacts(new LocalOperator());
    expect(facts.dockerInstalled).toBe(true);
    expect(facts.dockerVersion).toBe(/^Docker version ([^ ,]+)/.exec(stdout)?.[1]);
  });

  it('asks a dockerd that is not the package one (first on PATH) for its version', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pifaas-facts-'));
    await writeFile(path.join(dir, 'dockerd'), '#!/bin/sh\necho "Docker version 29.1.2, build 890dcca"\n');
    await chmod(path.join(dir, 'dockerd'), 0o755);
    process.env.PATH = `${dir}:${savedPath}`;
    const facts = await gatherFacts(new LocalOperator());
    expect(facts.dockerVersion).toBe('29.1.2');
  });
});
