// Why: provisioning, OpenFaaS and image side-loading drive each node's Docker Engine through
// dockerode; this gives them a dockerode client whose every HTTP connection is a fresh stream to
// the node's /var/run/docker.sock, opened through the node's Operator (an SSH channel for a real
// node). The Docker API is never exposed on TCP.
import { Agent, type AgentOptions, type ClientRequestArgs } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import { DEFAULT_DOCKER_SOCKET, type Operator } from './operator.js';

/** An http.Agent whose connections are streams opened by the operator (no TCP involved). */
class OperatorSocketAgent extends Agent {
  constructor(
    private readonly operator: Operator,
    private readonly socketPath: string,
    options?: AgentOptions,
  ) {
    super(options);
  }

  override createConnection(_options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    this.operator.openDockerSocket(this.socketPath).then(
      (stream) => {
        // http expects a net.Socket; a duplex works once these no-op socket methods exist.
        const s = stream as unknown as Socket & Record<string, unknown>;
        for (const m of ['setTimeout', 'setNoDelay', 'setKeepAlive', 'ref', 'unref'] as const) {
          if (typeof s[m] !== 'function') s[m] = () => s;
        }
        callback?.(null, s);
      },
      (err: Error) => callback?.(err, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/** A dockerode client for the node behind `operator` (API version negotiated by the daemon). */
export function dockerFor(operator: Operator, socketPath = DEFAULT_DOCKER_SOCKET): Docker {
  return new Docker({
    host: 'docker.invalid', // never resolved: every connection comes from the agent
    port: 80,
    protocol: 'http',
    agent: new OperatorSocketAgent(operator, socketPath, { keepAlive: false }),
  } as Docker.DockerOptions);
}
