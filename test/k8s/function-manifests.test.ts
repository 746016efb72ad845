import { loadAllYaml, V1Deployment, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { functionManifests, manifestsYaml } from '../../src/k8s/function-manifests.js';
import { loadStackFile, parseStackFile, stackFunction } from '../../src/openfaas/stack-file.js';
import { runCli } from '../openfaas/cli-run.js';

async function resnet() {
  return stackFunction(await loadStackFile('stack.yml', {}), 'faas-resnet');
}

describe('Kubernetes manifests for a stack.yml function', () => {
  it('builds a Deployment whose selector, pod labels and Service selector agree', async () => {
    const { deployment: d, service: s } = functionManifests(await resnet());
    expect(d.apiVersion).toBe('apps/v1');
    expect(d.kind).toBe('Deployment');
    expect(d.metadata).toMatchObject({ name: 'faas-resnet', namespace: 'default' });
    const podLabels = d.spec!.template.metadata!.labels!;
    for (const [k, v] of Object.entries(d.spec!.selector.matchLabels!)) expect(podLabels[k]).toBe(v);
    for (const [k, v] of Object.entries(s.spec!.selector!)) expect(podLabels[k]).toBe(v);
    expect(podLabels['com.openfaas.scale.max']).toBe('4');
    expect(s).toMatchObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'faas-resnet' }, spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 8080, targetPort: 'http' }] } });
  });

  it('runs the stack.yml image with its environment, resources and node placement', async () => {
    const { deployment: d } = functionManifests(await resnet());
    const pod = d.spec!.template.spec!;
    expect(pod.containers).toHaveLength(1);
    const c = pod.containers[0]!;
    expect(c.image).toBe((await resnet()).image);
    expect(c.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    const env = Object.fromEntries(c.env!.map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ PIFAAS_FUNCTION: 'faas-resnet', exec_timeout: '60s', write_timeout: '65s' });
    expect(c.resources).toEqual({ limits: { cpu: '2', memory: '512M' }, requests: { cpu: '500m', memory: '256M' } });
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    // Long enough to drain a request at write_timeout (65 s) after SIGTERM.
    expect(pod.terminationGracePeriodSeconds).toBe(70);
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false });
  });

  it('probes /_/health on the http port: startup (model loading), readiness and liveness', async () => {
    const c = functionManifests(await resnet()).deployment.spec!.template.spec!.containers[0]!;
    for (const p of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
      expect(p?.httpGet).toEqual({ path: '/_/health', port: 'http', scheme: 'HTTP' });
    }
    // A slow model load (a Pi, a ResNet-50) gets up to 180 s before liveness applies.
    expect(c.startupProbe!.periodSeconds! * c.startupProbe!.failureThreshold!).toBe(180);
  });

  it('takes replicas from com.openfaas.scale.min, or from the option; namespace, image and Service type from options', async () => {
    const stack = await parseStackFile(
      'provider: {name: openfaas}\nfunctions:\n  f:\n    image: a/f:1\n    labels: {com.openfaas.scale.min: 3}\n    environment: {port: 9000, write_timeout: 2m}\n    readonly_root_filesystem: true\n',
      's.yml',
    );
    const fn = stackFunction(stack, 'f');
    const m = functionManifests(fn);
    expect(m.deployment.spec!.replicas).toBe(3);
    const c = m.deployment.spec!.template.spec!.containers[0]!;
    expect(c.ports![0]!.containerPort).toBe(9000);
    expect(c.resources).toBeUndefined();
    expect(c.securityContext!.readOnlyRootFilesystem).toBe(true);
    expect(m.deployment.spec!.template.spec!.terminationGracePeriodSeconds).toBe(125);
    const o = functionManifests(fn, { replicas: 0, namespace: 'ml', image: 'registry.local/f:1', serviceType: 'NodePort' });
    expect(o.deployment.spec!.replicas).toBe(0);
    expect(o.deployment.metadata!.namespace).toBe('ml');
    expect(o.service.metadata!.namespace).toBe('ml');
    expect(o.service.spec!.type).toBe('NodePort');
    expect(o.deployment.spec!.template.spec!.containers[0]!.image).toBe('registry.local/f:1');
  });

  it('renders YAML the Kubernetes client reads back into the same typed objects', async () => {
    const m = functionManifests(await resnet(), { namespace: 'ml' });
    const text = await manifestsYaml(m);
    const docs = parseAllDocuments(text).map((d) => d.toJS());
    expect(docs.map((d) => `${d.apiVersion}/${d.kind}`)).toEqual(['apps/v1/Deployment', 'v1/Service']);
    expect(docs[0]).toEqual(JSON.parse(JSON.stringify(m.deployment)));
    expect(docs[1]).toEqual(JSON.parse(JSON.stringify(m.service)));
    const [dep, svc] = loadAllYaml(text) as [V1Deployment, V1Service];
    expect(dep).toBeInstanceOf(V1Deployment);
    expect(svc).toBeInstanceOf(V1Service);
    expect(dep.spec!.template.spec!.containers[0]!.readinessProbe!.httpGet!.path).toBe('/_/health');
  });

  it('prints them from the CLI, as YAML or a JSON List', async () => {
    const r = await runCli(['k8s', 'manifests', 'faas-digits', '--namespace', 'ml', '--replicas', '2', '--json']);
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout);
    expect(list.kind).toBe('List');
    expect(list.items.map((i: { kind: string }) => i.kind)).toEqual(['Deployment', 'Service']);
    expect(list.items[0].spec.replicas).toBe(2);
    expect(list.items[0].metadata.namespace).toBe('ml');
    const bad = await runCli(['k8s', 'manifests', 'faas-nope']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('error: stack.yml defines no function "faas-nope"\nhint: it defines: faas-resnet, faas-digits\n');
  });
});
