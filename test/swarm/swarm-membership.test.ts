// Leaving and joining judged by the node's swarm state, not by dockerd's answer. A loaded dockerd's
// "context deadline exceeded" (seen in CI on a 2-core machine) cannot be produced on demand here, so
// these tests stand in for dockerd with the three Engine API calls involved, answering as dockerode
// reports them: `(HTTP code 500) server error - <message>`. The real path runs in provision.test.ts.
import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { joinSwarm, leaveSwarm } from '../../src/swarm/swarm-membership.js';

function engineError(status: number, label: string, message: string): Error {
  return Object.assign(new Error(`(HTTP code ${status}) ${label} - ${message} `), { statusCode: status, json: { message } });
}

/** A node whose swarm state changes only when `settle` says so, as a slow dockerd's does. */
function slowNode(script: { leave?: () => void; join?: () => void; states: string[] }) {
  let look = 0;
  const calls: string[] = [];
  const docker = {
    async info() {
      const state = script.states[Math.min(look, script.states.length - 1)];
      look++;
      calls.push(`info:${state}`);
      return { Swarm: { LocalNodeState: state, NodeID: state === 'active' ? 'n3w1d' : '' } };
    },
    async swarmLeave() {
      calls.push('leave');
      script.leave?.();
    },
    async swarmJoin() {
      calls.push('join');
      script.join?.();
    },
  };
  return { docker: docker as unknown as Docker, calls };
}

const JOIN = { ListenAddr: '0.0.0.0:2377', AdvertiseAddr: '10.0.0.3', RemoteAddrs: ['10.0.0.1:2377'], JoinToken: 'SWMTKN-1-x' };

describe('leaving a swarm', () => {
  it('waits for the state when dockerd answers "context deadline exceeded" but goes on leaving', async () => {
    const node = slowNode({
      leave: () => {
        throw engineError(500, 'server error', 'context deadline exceeded');
      },
      states: ['active', 'active', 'inactive'],
    });
    await expect(leaveSwarm(node.docker, 'pi3', { pollMs: 1 })).resolves.toBeUndefined();
    expect(node.calls).toEqual(['leave', 'info:active', 'info:active', 'info:inactive']);
  });

  it('asks again when a timed-out leave did not happen, and takes "not part of a swarm" as done', async () => {
    let leaves = 0;
    let state = 'active';
    const docker = {
      info: async () => ({ Swarm: { LocalNodeState: state } }),
      swarmLeave: async () => {
        leaves++;
        if (leaves === 1) throw engineError(500, 'server error', 'context deadline exceeded'); // and it stays active
        state = 'inactive';
        throw engineError(503, 'node is not part of a swarm', 'This node is not part of a swarm');
      },
    } as unknown as Docker;
    await expect(leaveSwarm(docker, 'pi3', { pollMs: 1, askAgainMs: 20 })).resolves.toBeUndefined();
    expect(leaves).toBe(2);
  });

  it('names the node, what dockerd said and what to do when the node never leaves', async () => {
    const node = slowNode({
      leave: () => {
        throw engineError(500, 'server error', 'context deadline exceeded');
      },
      states: ['active'],
    });
    const err = (await leaveSwarm(node.docker, 'pi3', { pollMs: 5, timeoutMs: 50 }).then(
      () => new Error('left'),
      (e: unknown) => e,
    )) as Error & { hint?: string };
    expect(err.message).toBe('pi3 did not leave its old swarm within 0 s (dockerd answered: context deadline exceeded)');
    expect(err.hint).toContain('docker swarm leave --force');
  });

  it('passes on a refusal that is not a timeout', async () => {
    const node = slowNode({
      leave: () => {
        throw engineError(500, 'server error', 'permission denied');
      },
      states: ['active'],
    });
    await expect(leaveSwarm(node.docker, 'pi3', { pollMs: 1 })).rejects.toThrow('pi3 could not leave its old swarm: permission denied');
    expect(node.calls).toEqual(['leave']);
  });
});

describe('joining a swarm', () => {
  it('waits for "active" when dockerd says the join goes on in the background', async () => {
    const node = slowNode({
      join: () => {
        throw engineError(
          500,
          'server error',
          'Timeout was reached before node joined. The attempt to join the swarm will continue in the background. Use the "docker info" command to see the current swarm status of your node.',
        );
      },
      states: ['pending', 'pending', 'active'],
    });
    const s = await joinSwarm(node.docker, 'pi3', JOIN, { pollMs: 1 });
    expect(s).toMatchObject({ LocalNodeState: 'active', NodeID: 'n3w1d' });
  });

  it('says the join failed, with the state, when the background join ends in error', async () => {
    const node = slowNode({
      join: () => {
        throw engineError(500, 'server error', 'Timeout was reached before node joined.');
      },
      states: ['pending', 'error'],
    });
    await expect(joinSwarm(node.docker, 'pi3', JOIN, { pollMs: 1 })).rejects.toThrow(/^pi3 did not finish joining the swarm via 10\.0\.0\.1:2377 \(state error;/);
  });

  it('passes on any other refusal unchanged', async () => {
    const node = slowNode({
      join: () => {
        throw engineError(400, 'bad parameter', 'invalid join token');
      },
      states: ['inactive'],
    });
    await expect(joinSwarm(node.docker, 'pi3', JOIN, { pollMs: 1 })).rejects.toThrow('invalid join token');
  });
});
