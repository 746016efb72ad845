// Why: faas-swarm (OpenFaaS's Go provider for Docker Swarm) cannot run here, but the swarm it drives
// can. This backend for the test gateway does what faas-swarm 0.9.0's handlers do on a real Docker
// swarm: a function is a replicated service named after it, labelled com.openfaas.function and
// function=true, on the network labelled openfaas=true, restarted on any exit, with fprocess and
// envVars as its environment; its available replicas are its running tasks (the replica reader).
import type Dockerode from 'dockerode';
import type { ProviderBackend } from './fake-gateway.js';

export interface SwarmServiceOptions {
  /** Publish the function's port 8080 on the node (host mode) so tests can reach it with curl. */
  hostPort?: number;
  /** DNS round robin instead of VIP (kernels without IPVS). */
  dnsrr?: boolean;
}

/** The service spec faas-swarm's makeSpec builds for a FunctionDeployment. */
export async function faasSwarmServiceSpec(docker: Dockerode, req: Record<string, unknown>, opts: SwarmServiceOptions = {}): Promise<Dockerode.ServiceSpec> {
  const name = String(req.service);
  const labels: Record<string, string> = { 'com.openfaas.function': name, function: 'true', ...((req.labels as Record<string, string>) ?? {}) };
  const networks = await docker.listNetworks({ filters: { label: ['openfaas=true'] } });
  const env = [
    ...(req.envProcess ? [`fprocess=${String(req.envProcess)}`] : []),
    ...Object.entries((req.envVars as Record<string, string>) ?? {}).map(([k, v]) => `${k}=${v}`),
  ];
  const constraints = (req.constraints as string[] | undefined)?.length ? (req.constraints as string[]) : ['node.platform.os == linux'];
  const limits = req.limits as { memory?: string; cpu?: string } | undefined;
  const memory = (m?: string) => {
    const r = m && /^(\d+)([kmg])?/i.exec(m);
    return r ? Number(r[1]) * ({ k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(r[2] ?? '').toLowerCase() as 'k'] ?? 1) : undefined;
  };
  return {
    Name: name,
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: { Image: String(req.image), Labels: labels, ...(env.length ? { Env: env } : {}) },
      RestartPolicy: { Condition: 'any', MaxAttempts: 5, Delay: 5e9 },
      Placement: { Constraints: constraints },
      ...(networks[0] ? { Networks: [{ Target: networks[0].Name }] } : {}),
      ...(limits ? { Resources: { Limits: { ...(memory(limits.memory) ? { MemoryBytes: memory(limits.memory) } : {}), ...(limits.cpu ? { NanoCPUs: Number(limits.cpu) } : {}) } } } : {}),
    },
    Mode: { Replicated: { Replicas: Number(labels['com.openfaas.scale.min'] ?? 1) } },
    ...(opts.hostPort || opts.dnsrr
      ? {
          EndpointSpec: {
            Mode: opts.dnsrr ? 'dnsrr' : 'vip',
            ...(opts.hostPort ? { Ports: [{ Protocol: 'tcp' as const, TargetPort: 8080, PublishedPort: opts.hostPort, PublishMode: 'host' as const }] } : {}),
          },
        }
      : {}),
  };
}

export function swarmBackend(docker: Dockerode, opts: SwarmServiceOptions = {}): ProviderBackend {
  const find = async (name: string) => (await docker.listServices({ filters: { name: [name] } })).find((s) => s.Spec?.Name === name);
  return {
    async deploy(req, update) {
      const spec = await faasSwarmServiceSpec(docker, req, opts);
      const current = await find(String(req.service));
      if (update && current) await docker.getService(current.ID).update({ _query: { version: current.Version?.Index }, _body: spec } as unknown as Dockerode.ServiceSpec);
      else await docker.createService(spec);
    },
    async remove(name) {
      const s = await find(name);
      if (s) await docker.getService(s.ID).remove();
    },
    async replicas(name) {
      const s = await find(name);
      if (!s) return { replicas: 0, available: 0 };
      const tasks = (await docker.listTasks({ filters: { service: [s.ID], 'desired-state': ['running'] } })) as Array<{ Status?: { State?: string } }>;
      return { replicas: s.Spec?.Mode?.Replicated?.Replicas ?? 0, available: tasks.filter((t) => t.Status?.State === 'running').length };
    },
  };
}
