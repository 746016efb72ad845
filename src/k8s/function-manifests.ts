// Why: the same function image runs on a Kubernetes cluster without OpenFaaS (the AWS kubeadm node):
// `pifaas k8s manifests NAME` prints a Deployment and a Service for it, built from
// @kubernetes/client-node's model types (so every field name is the API's), with health probes on the
// function's /_/health, the resources, labels, environment and placement of stack.yml, and a grace
// period long enough for the function to drain its in-flight requests on SIGTERM.
import type { V1Container, V1Deployment, V1EnvVar, V1Probe, V1ResourceRequirements, V1Service } from '@kubernetes/client-node';
import { constraintsFor } from '../openfaas/function-deploy.js';
import type { StackFunction } from '../openfaas/stack-file.js';
import { UserError } from '../user-error.js';

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer';

export interface ManifestOptions {
  namespace?: string;
  /** Default: the com.openfaas.scale.min label, else 1. */
  replicas?: number;
  serviceType?: ServiceType;
  /** Use another image than stack.yml's (e.g. one pushed to the cluster's registry). */
  image?: string;
}

export interface FunctionManifests {
  deployment: V1Deployment;
  service: V1Service;
}

/** Go duration in seconds ("65s", "1m30s", "2m"); undefined when absent or unreadable. */
function durationSeconds(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const m = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$/.exec(text.trim());
  if (!m || !(m[1] || m[2] || m[3])) return undefined;
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

function resources(fn: StackFunction): V1ResourceRequirements | undefined {
  const pick = (r: StackFunction['limits']) => {
    const out: Record<string, string> = {};
    if (r?.cpu) out.cpu = r.cpu;
    if (r?.memory) out.memory = r.memory;
    return Object.keys(out).length ? out : undefined;
  };
  const limits = pick(fn.limits);
  const requests = pick(fn.requests);
  if (!limits && !requests) return undefined;
  return { ...(limits ? { limits } : {}), ...(requests ? { requests } : {}) };
}

export function functionManifests(fn: StackFunction, opts: ManifestOptions = {}): FunctionManifests {
  const port = Number(fn.environment.port ?? 8080);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UserError(`the port of ${fn.name} in stack.yml ("${fn.environment.port}") is not a port number`);
  const scaleMin = Number(fn.labels?.['com.openfaas.scale.min'] ?? 1);
  const replicas = opts.replicas ?? (Number.isInteger(scaleMin) && scaleMin >= 0 ? scaleMin : 1);
  const selector = { faas_function: fn.name };
  const labels = {
    ...selector,
    'app.kubernetes.io/name': fn.name,
    'app.kubernetes.io/part-of': 'pifaas',
    'app.kubernetes.io/managed-by': 'pifaas',
  };
  const namespace = opts.namespace ?? 'default';
  const env: V1EnvVar[] = Object.entries(fn.environment)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => ({ name, value }));
  if (fn.fprocess) env.push({ name: 'fprocess', value: fn.fprocess });
  const health = { httpGet: { path: '/_/health', port: 'http', scheme: 'HTTP' } } satisfies V1Probe;
  // The function answers 200 on /_/health only once its model is loaded and warmed.
  const startupProbe: V1Probe = { ...health, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 90 };
  const readinessProbe: V1Probe = { ...health, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 };
  const livenessProbe: V1Probe = { ...health, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6 };
  // On SIGTERM the function finishes what it is doing: give it its longest request time, and a little.
  const longest = Math.max(durationSeconds(fn.environment.write_timeout) ?? 0, durationSeconds(fn.environment.exec_timeout) ?? 0, 30);
  const container: V1Container = {
    name: fn.name,
    image: opts.image ?? fn.image,
    imagePullPolicy: 'IfNotPresent',
    ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
    env,
    startupProbe,
    readinessProbe,
    livenessProbe,
    ...(resources(fn) ? { resources: resources(fn) } : {}),
    securityContext: {
      allowPrivilegeEscalation: false,
      runAsNonRoot: true,
      readOnlyRootFilesystem: fn.readonly_root_filesystem ?? false,
      capabilities: { drop: ['ALL'] },
    },
  };
  const nodeSelector = Object.fromEntries(
    (constraintsFor('kubernetes', fn.constraints) ?? []).map((c) => c.split('=') as [string, string]).filter((kv) => kv.length === 2),
  );
  const deployment: V1Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: fn.name,
      namespace,
      labels,
      ...(fn.annotations ? { annotations: fn.annotations } : {}),
    },
    spec: {
      replicas,
      selector: { matchLabels: selector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: { ...(fn.labels ?? {}), ...labels }, ...(fn.annotations ? { annotations: fn.annotations } : {}) },
        spec: {
          containers: [container],
          terminationGracePeriodSeconds: Math.ceil(longest) + 5,
          ...(Object.keys(nodeSelector).length ? { nodeSelector } : {}),
          enableServiceLinks: false,
        },
      },
    },
  };
  const service: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: fn.name, namespace, labels },
    spec: {
      type: opts.serviceType ?? 'ClusterIP',
      selector,
      ports: [{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }],
    },
  };
  return { deployment, service };
}

/**
 * The manifests as one multi-document YAML, through the client library's own serializer (fields it
 * does not know would be dropped, so the output holds only what the API defines).
 */
export async function manifestsYaml(m: FunctionManifests): Promise<string> {
  const { dumpYaml } = await import('@kubernetes/client-node');
  return [m.deployment, m.service].map((o) => dumpYaml(o)).join('---\n');
}
