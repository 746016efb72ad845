// Why: when a function never becomes ready, the gateway only says "0 of 1 replicas available"; the
// reason is in the swarm's tasks (Rejected "No such image", a container that exits at once with
// "exec format error" because the image was built for another CPU, "no suitable node"). This module
// reads the function service's tasks and their last log lines through the Docker Engine API of a
// manager and turns them into one plain sentence with what to do next.
import type Dockerode from 'dockerode';

export interface TaskReport {
  id: string;
  /** Host name of the node the task was given to (empty while pending). */
  node: string;
  /** The node's platform, e.g. linux/aarch64. */
  platform: string;
  state: string;
  desiredState: string;
  /** The swarm's error for the task (Status.Err). */
  error?: string;
  message?: string;
  updatedAt: string;
  /** Last lines the task's container wrote (failed tasks only). */
  logTail: string[];
}

/** Something that can describe a function's swarm tasks (a manager's Docker Engine API). */
export interface FunctionTaskSource {
  tasks(service: string): Promise<TaskReport[]>;
}

export interface TaskDiagnosis {
  /** True when waiting longer cannot help (the image cannot run, or is missing on the node). */
  fatal: boolean;
  message: string;
  hint: string;
}

/** Splits Docker's multiplexed log stream (8-byte frame headers) into text. */
export function demuxDockerLog(buf: Buffer): string {
  let out = '';
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 0 || buf[i] === 1 || buf[i] === 2) && buf[i + 1] === 0) {
    const size = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  return i === 0 ? buf.toString('utf8') : out;
}

export function dockerFunctionTasks(docker: Dockerode): FunctionTaskSource {
  return {
    async tasks(service: string): Promise<TaskReport[]> {
      const svc = (await docker.listServices({ filters: { name: [service] } })).find((s) => s.Spec?.Name === service);
      if (!svc) return [];
      // Only tasks of the current spec: older ones (from before the last update) say nothing about it.
      const since = Date.parse(svc.UpdatedAt ?? svc.CreatedAt ?? '') || 0;
      const [all, nodes] = await Promise.all([docker.listTasks({ filters: { service: [svc.ID] } }), docker.listNodes()]);
      const tasks = (all as Array<{ CreatedAt?: string }>).filter((t) => (Date.parse(t.CreatedAt ?? '') || 0) >= since);
      const nodeById = new Map(nodes.map((n) => [n.ID, n]));
      const reports: TaskReport[] = [];
      for (const t of tasks as Array<{
        ID: string;
        NodeID?: string;
        DesiredState?: string;
        UpdatedAt?: string;
        Status?: { State?: string; Err?: string; Message?: string; Timestamp?: string };
      }>) {
        const node = t.NodeID ? nodeById.get(t.NodeID) : undefined;
        const platform = node?.Description?.Platform;
        const state = t.Status?.State ?? 'unknown';
        let logTail: string[] = [];
        if ((state === 'failed' || state === 'complete') && t.ID) {
          try {
            // dockerode implements Task.logs (GET /tasks/{id}/logs); its type definitions lack it.
            const task = docker.getTask(t.ID) as unknown as { logs(o: object): Promise<unknown> };
            const raw = await task.logs({ stdout: true, stderr: true, tail: 5 });
            const text = Buffer.isBuffer(raw) ? demuxDockerLog(raw) : String(raw ?? '');
            logTail = text.split('\n').map((l) => l.trimEnd()).filter(Boolean);
          } catch {
            // Logs of a task whose node left the swarm cannot be read; the error says enough.
          }
        }
        reports.push({
          id: t.ID,
          node: node?.Description?.Hostname ?? t.NodeID ?? '',
          platform: platform ? `${platform.OS}/${platform.Architecture}` : '',
          state,
          desiredState: t.DesiredState ?? '',
          error: t.Status?.Err || undefined,
          message: t.Status?.Message || undefined,
          updatedAt: t.Status?.Timestamp ?? t.UpdatedAt ?? '',
          logTail,
        });
      }
      return reports.sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
    },
  };
}

/** Docker's platform (linux/aarch64) as a --platform value (linux/arm64). */
function buildPlatform(platform: string): string {
  const [os = 'linux', arch = ''] = platform.split('/');
  const a = arch === 'x86_64' ? 'amd64' : arch === 'aarch64' ? 'arm64' : arch.startsWith('armv7') ? 'arm/v7' : arch.startsWith('armv6') ? 'arm/v6' : arch;
  return `${os}/${a}`;
}

/**
 * Reads the tasks of a function that is not ready yet and says why, or undefined when nothing is
 * wrong so far (tasks still being prepared or starting).
 */
export function diagnoseTasks(fn: string, image: string, tasks: TaskReport[], hints: { missingImage?: string } = {}): TaskDiagnosis | undefined {
  const troubled = tasks.filter((t) => t.error || t.state === 'failed' || t.state === 'rejected');
  const latest = troubled.find((t) => t.error) ?? troubled[0];
  if (!latest) return undefined;
  const nodeDesc = latest.node ? `${latest.node}${latest.platform ? ` (${latest.platform})` : ''}` : 'its node';
  const where = ` on ${nodeDesc}`;
  const text = [latest.error ?? '', ...latest.logTail].join('\n');
  if (/exec format error/i.test(text)) {
    const target = latest.platform ? buildPlatform(latest.platform) : 'the node\'s platform';
    return {
      fatal: true,
      message: `${fn} cannot run${where}: exec format error (the image ${image} was built for another CPU)`,
      hint: `build the image for ${target} as well (\`pifaas build ${fn} --platforms linux/amd64,linux/arm64,linux/arm/v7\`) and send it to the nodes (\`pifaas push ${fn} --to INVENTORY\`), then deploy again`,
    };
  }
  if (/no such image|pull access denied|manifest unknown|not found: manifest|failed to resolve reference/i.test(text)) {
    return {
      fatal: true,
      message: `${fn}'s image ${image} is not on ${nodeDesc} and cannot be pulled: ${latest.error ?? 'No such image'}`,
      hint:
        hints.missingImage ??
        `send the image to every node with \`pifaas push ${fn} --to INVENTORY\` (or push it to a registry the nodes can reach), then deploy again`,
    };
  }
  if (/no suitable node/i.test(text)) {
    return {
      fatal: false,
      message: `the swarm found no node for ${fn}: ${latest.error ?? latest.message}`,
      hint: 'check the constraints and memory requests of the function in stack.yml against the nodes (`docker node ls`)',
    };
  }
  const failures = tasks.filter((t) => t.state === 'failed' || t.state === 'rejected').length;
  const logs = latest.logTail.length ? `; its last output:\n    ${latest.logTail.join('\n    ')}` : '';
  return {
    fatal: failures >= 3,
    message: `${fn}'s task${where} is ${latest.state}: ${latest.error ?? latest.message ?? 'no error given'}${logs}`,
    hint: `\`docker service ps ${fn} --no-trunc\` and \`docker service logs ${fn}\` on a manager show the whole story`,
  };
}
