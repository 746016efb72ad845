// runCommand with sudo, on real processes of this machine: what a command that is cut off reports.
import { describe, expect, it } from 'vitest';
import { runCommand, type RawProcess } from '../../src/operator/command-runner.js';
import { spawnLocal } from '../../src/operator/local-operator.js';
import { CommandFailedError, SudoError } from '../../src/operator/operator.js';

/** The local operator's spawner; `cutOff`: the process is killed at once, as when a node goes away. */
function spawner(cutOff: boolean) {
  return async (line: string): Promise<RawProcess> => {
    const proc = await spawnLocal(line);
    if (cutOff) proc.kill();
    return proc;
  };
}

const ctx = { node: 'pi1', user: 'pi', isRoot: false };

describe('runCommand through sudo', () => {
  it('runs the command as root and returns its output', async () => {
    const r = await runCommand(spawner(false), ctx, 'id -u', { sudo: true });
    expect(r.stdout.trim()).toBe('0');
  });

  it('a command cut off before sudo answered is a failed command (exit code 255), not a missing sudo right', async () => {
    const err = await runCommand(spawner(true), ctx, 'id -u', { sudo: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    expect(err).not.toBeInstanceOf(SudoError);
    expect((err as CommandFailedError).code).toBe(255);
    expect((err as Error).message).toMatch(/^pi1: `id -u` failed with exit code 255/);
  });

  it('sudo that ends with its own refusal is still a sudo error naming the user', async () => {
    // sudo exits 1 without running the command: here, an option it refuses.
    const err = await runCommand(async (line) => spawner(false)(line.replace(/^sudo /, 'sudo --no-such-option ')), ctx, 'id -u', { sudo: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SudoError);
    expect((err as Error).message).toMatch(/^pi1: sudo failed for user pi/);
  });
});
