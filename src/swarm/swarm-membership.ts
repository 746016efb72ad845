// Why: leaving and joining a swarm are the two Engine API calls whose answer is not the verdict.
// A loaded dockerd answers a leave with "context deadline exceeded" while the leave still
// completes, and answers a join that takes over 20 s with "Timeout was reached before node
// joined ... will continue in the background". Both are judged here by the node's own swarm state
// (GET /info), so a slow Pi is waited for instead of being reported as failed.
import type Docker from 'dockerode';
import { UserError } from '../user-error.js';

export type SwarmInfo = {
  NodeID?: string;
  LocalNodeState?: string;
  ControlAvailable?: boolean;
  Cluster?: { ID?: string };
  RemoteManagers?: { Addr?: string }[] | null;
  Error?: string;
};

/** The node's swarm state from GET /info. */
export async function swarmInfo(docker: Docker): Promise<SwarmInfo> {
  const info = (await docker.info()) as { Swarm?: SwarmInfo };
  return info.Swarm ?? {};
}

export interface MembershipOptions {
  /** How long to wait for the node to reach the state. Default 90 s. */
  timeoutMs?: number;
  /** Between two looks at the node's state. Default 1 s. */
  pollMs?: number;
  /** How long a leave that dockerd gave up on is watched before it is asked for again. Default 10 s. */
  askAgainMs?: number;
}

/** dockerd's answers that mean "still working on it", not "refused". */
const STILL_WORKING = /context deadline exceeded|Timeout was reached before node joined|attempt to join the swarm will continue in the background/i;

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e)).replace(/^\(HTTP code \d+\) [a-z ]+ - /i, '').trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `docker swarm leave --force`, done once the node's state is `inactive`. */
export async function leaveSwarm(docker: Docker, node: string, options: MembershipOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 90_000;
  const deadline = Date.now() + timeoutMs;
  let answer: string | undefined;
  for (;;) {
    try {
      await docker.swarmLeave({ force: true });
    } catch (e) {
      answer = messageOf(e);
      // "not part of a swarm": the earlier attempt already finished.
      if (!STILL_WORKING.test(answer) && !/not part of a swarm/i.test(answer)) {
        throw new UserError(`${node} could not leave its old swarm: ${answer}`, `run \`docker swarm leave --force\` on ${node}, then re-run`);
      }
    }
    // A leave that dockerd gave up waiting for goes on; look at the state for a while before asking again.
    const lookUntil = Math.min(deadline, Date.now() + (options.askAgainMs ?? 10_000));
    for (;;) {
      if ((await swarmInfo(docker)).LocalNodeState === 'inactive') return;
      if (Date.now() >= lookUntil) break;
      await sleep(options.pollMs ?? 1000);
    }
    if (Date.now() >= deadline) {
      throw new UserError(
        `${node} did not leave its old swarm within ${Math.round(timeoutMs / 1000)} s${answer ? ` (dockerd answered: ${answer})` : ''}`,
        `check dockerd on ${node} (\`docker info\`), run \`docker swarm leave --force\` there, then re-run`,
      );
    }
  }
}

export interface JoinRequest {
  ListenAddr: string;
  AdvertiseAddr: string;
  RemoteAddrs: string[];
  JoinToken: string;
}

/** `docker swarm join`, done once the node's state is `active`; returns the node's swarm state. */
export async function joinSwarm(docker: Docker, node: string, request: JoinRequest, options: MembershipOptions = {}): Promise<SwarmInfo> {
  const timeoutMs = options.timeoutMs ?? 90_000;
  try {
    await docker.swarmJoin(request);
    return await swarmInfo(docker);
  } catch (e) {
    const answer = messageOf(e);
    if (!STILL_WORKING.test(answer)) throw e;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await swarmInfo(docker);
      if (s.LocalNodeState === 'active' && s.NodeID) return s;
      if (s.LocalNodeState === 'error' || s.LocalNodeState === 'inactive' || Date.now() >= deadline) {
        throw new UserError(
          `${node} did not finish joining the swarm via ${request.RemoteAddrs.join(', ')} (state ${s.LocalNodeState ?? '?'}${s.Error ? `: ${s.Error}` : ''}; dockerd answered: ${answer})`,
          `check that ${node} reaches port ${request.RemoteAddrs[0]?.split(':').pop() ?? '2377'}/tcp of the manager, then re-run`,
        );
      }
      await sleep(options.pollMs ?? 1000);
    }
  }
}
