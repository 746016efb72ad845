import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { alertmanagerConfig, prometheusAlertRules, prometheusConfig } from '../../src/openfaas/monitoring-config.js';
import { cpuFamilyOf, imageFor, OPENFAAS_SWARM_RELEASE as R } from '../../src/openfaas/release.js';
import { compareApiVersions, faasSwarmApiVersion, generatePassword } from '../../src/openfaas/stack-installer.js';
import { desiredOpenFaaSStack, SPEC_HASH_LABEL, STACK_NAMESPACE_LABEL } from '../../src/openfaas/swarm-stack.js';

const envOf = (env: string[] | undefined) => Object.fromEntries((env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));

describe('the pinned OpenFaaS Swarm release', () => {
  it('pins the last Swarm-compatible versions', () => {
    expect(Object.fromEntries(Object.entries(R.images).map(([k, v]) => [k, `${v.repository}:${v.tag}`]))).toEqual({
      gateway: 'openfaas/gateway:0.18.18',
      basicAuthPlugin: 'openfaas/basic-auth-plugin:0.18.18',
      faasSwarm: 'openfaas/faas-swarm:0.9.0',
      nats: 'nats-streaming:0.17.0',
      queueWorker: 'openfaas/queue-worker:0.11.2',
      prometheus: 'prom/prometheus:v2.11.0',
      alertmanager: 'prom/alertmanager:v0.18.0',
    });
  });

  it('picks per-arch tags for gateway, basic-auth-plugin and faas-swarm by the manager\'s architecture', () => {
    const images = (arch: string) => Object.fromEntries(desiredOpenFaaSStack({ architecture: arch, publish: 'ingress', gatewayPort: 8080 }).services.map((s) => [s.shortName, s.image]));
    expect(images('x86_64')).toMatchObject({ gateway: 'openfaas/gateway:0.18.18', 'basic-auth-plugin': 'openfaas/basic-auth-plugin:0.18.18', 'faas-swarm': 'openfaas/faas-swarm:0.9.0' });
    expect(images('aarch64')).toMatchObject({ gateway: 'openfaas/gateway:0.18.18-arm64', 'basic-auth-plugin': 'openfaas/basic-auth-plugin:0.18.18-arm64', 'faas-swarm': 'openfaas/faas-swarm:0.9.0-arm64' });
    expect(images('armv7l')).toEqual({
      gateway: 'openfaas/gateway:0.18.18-armhf',
      'basic-auth-plugin': 'openfaas/basic-auth-plugin:0.18.18-armhf',
      'faas-swarm': 'openfaas/faas-swarm:0.9.0-armhf',
      // Multi-arch manifest lists: one tag for every architecture.
      nats: 'nats-streaming:0.17.0',
      'queue-worker': 'openfaas/queue-worker:0.11.2',
      prometheus: 'prom/prometheus:v2.11.0',
      alertmanager: 'prom/alertmanager:v0.18.0',
    });
    expect(imageFor('gateway', cpuFamilyOf('armv6l'))).toBe('openfaas/gateway:0.18.18-armhf');
    expect(() => cpuFamilyOf('riscv64')).toThrow(/no images for the riscv64 architecture/);
  });

  it('places services as upstream did: providers, auth and monitoring on managers; per-arch images on that arch only', () => {
    const stack = desiredOpenFaaSStack({ architecture: 'aarch64', publish: 'ingress', gatewayPort: 8080 });
    const constraints = Object.fromEntries(stack.services.map((s) => [s.shortName, s.spec.TaskTemplate.Placement!.Constraints]));
    expect(constraints).toEqual({
      gateway: ['node.platform.os == linux', 'node.platform.arch == aarch64'],
      'basic-auth-plugin': ['node.role == manager', 'node.platform.os == linux', 'node.platform.arch == aarch64'],
      'faas-swarm': ['node.role == manager', 'node.platform.os == linux', 'node.platform.arch == aarch64'],
      nats: ['node.platform.os == linux'],
      'queue-worker': ['node.platform.os == linux'],
      prometheus: ['node.role == manager', 'node.platform.os == linux'],
      alertmanager: ['node.role == manager', 'node.platform.os == linux'],
    });
    // Host publishing opens the port where the gateway runs: on a manager, whose address is the URL.
    const host = desiredOpenFaaSStack({ architecture: 'aarch64', publish: 'host', gatewayPort: 8080 });
    expect(host.services.find((s) => s.shortName === 'gateway')!.spec.TaskTemplate.Placement!.Constraints).toContain('node.role == manager');
  });

  it('publishes the gateway in ingress mode by default, host mode with DNS round robin for kernels without IPVS', () => {
    const ingress = desiredOpenFaaSStack({ architecture: 'x86_64', publish: 'ingress', gatewayPort: 8080 });
    const host = desiredOpenFaaSStack({ architecture: 'x86_64', publish: 'host', gatewayPort: 31112 });
    const gw = (s: typeof ingress) => s.services.find((x) => x.shortName === 'gateway')!.spec.EndpointSpec;
    expect(gw(ingress)).toEqual({ Mode: 'vip', Ports: [{ Protocol: 'tcp', TargetPort: 8080, PublishedPort: 8080, PublishMode: 'ingress' }] });
    expect(gw(host)).toEqual({ Mode: 'dnsrr', Ports: [{ Protocol: 'tcp', TargetPort: 8080, PublishedPort: 31112, PublishMode: 'host' }] });
    expect(host.services.every((s) => s.spec.EndpointSpec!.Mode === 'dnsrr')).toBe(true);
    expect(ingress.services.filter((s) => s.spec.EndpointSpec!.Ports).map((s) => s.shortName)).toEqual(['gateway']);
  });

  it('labels everything as the `func` stack, joins the attachable functions network with each service\'s DNS alias', () => {
    const stack = desiredOpenFaaSStack({ architecture: 'x86_64', publish: 'ingress', gatewayPort: 8080 });
    expect(stack.network).toEqual({ name: 'func_functions', labels: { [STACK_NAMESPACE_LABEL]: 'func', openfaas: 'true', 'com.pifaas.managed': 'true' } });
    for (const s of stack.services) {
      expect(s.name).toBe(`func_${s.shortName}`);
      expect(s.spec.Labels![STACK_NAMESPACE_LABEL]).toBe('func');
      expect(s.spec.Labels!['com.docker.stack.image']).toBe(s.image);
      expect(s.spec.TaskTemplate.ContainerSpec.Labels![STACK_NAMESPACE_LABEL]).toBe('func');
      expect(s.spec.TaskTemplate.Networks).toEqual([{ Target: 'func_functions', Aliases: [s.shortName] }]);
      expect(s.spec.Labels![SPEC_HASH_LABEL]).toBe(s.specHash);
    }
  });

  it('gives the gateway, providers and queue worker both secrets, alertmanager the password, and long consistent timeouts', () => {
    const stack = desiredOpenFaaSStack({ architecture: 'x86_64', publish: 'ingress', gatewayPort: 8080 });
    const by = Object.fromEntries(stack.services.map((s) => [s.shortName, s.spec.TaskTemplate.ContainerSpec]));
    const secrets = (k: string) => (by[k]!.Secrets ?? []).map((s) => `${s.SecretName}->/run/secrets/${s.File!.Name}`);
    for (const k of ['gateway', 'basic-auth-plugin', 'faas-swarm', 'queue-worker']) {
      expect(secrets(k)).toEqual(['basic-auth-user->/run/secrets/basic-auth-user', 'basic-auth-password->/run/secrets/basic-auth-password']);
    }
    expect(secrets('alertmanager')).toEqual(['basic-auth-password->/run/secrets/basic-auth-password']);
    expect(secrets('nats')).toEqual([]);
    const gw = envOf(by.gateway!.Env);
    expect(gw).toMatchObject({ functions_provider_url: 'http://faas-swarm:8080/', basic_auth: 'true', auth_proxy_url: 'http://basic-auth-plugin:8080/validate', direct_functions: 'true' });
    const s = (v: string) => Number(v.replace(/s$/, ''));
    expect(s(gw.upstream_timeout!)).toBeGreaterThanOrEqual(60);
    expect(s(gw.read_timeout!)).toBeGreaterThan(s(gw.upstream_timeout!));
    expect(gw.write_timeout).toBe(gw.read_timeout);
    const provider = envOf(by['faas-swarm']!.Env);
    expect(provider).toMatchObject({ read_timeout: gw.read_timeout, write_timeout: gw.write_timeout, DOCKER_API_VERSION: '1.30' });
    expect(s(envOf(by['queue-worker']!.Env).ack_wait!)).toBeGreaterThanOrEqual(s(gw.upstream_timeout!));
    expect(by['faas-swarm']!.Mounts).toEqual([{ Type: 'bind', Source: '/var/run/docker.sock', Target: '/var/run/docker.sock' }]);
    expect(by.nats!.Args).toEqual(['--store', 'memory', '--cluster_id', 'faas-cluster']);
  });

  it('mounts Prometheus and Alertmanager configs, named by content so a changed file is a new config', () => {
    const stack = desiredOpenFaaSStack({ architecture: 'x86_64', publish: 'ingress', gatewayPort: 8080 });
    expect(stack.configs.map((c) => c.key)).toEqual(['prometheus_config', 'prometheus_rules', 'alertmanager_config']);
    for (const c of stack.configs) expect(c.name).toMatch(new RegExp(`^func_${c.key}_[0-9a-f]{10}$`));
    const prom = stack.services.find((s) => s.shortName === 'prometheus')!.spec.TaskTemplate.ContainerSpec;
    expect(prom.Configs!.map((c) => c.File!.Name)).toEqual(['/etc/prometheus/prometheus.yml', '/etc/prometheus/alert.rules.yml']);
    expect(prom.Args).toContain('--config.file=/etc/prometheus/prometheus.yml');
    const p = parse(prometheusConfig());
    expect(p.rule_files).toEqual(['alert.rules.yml']);
    expect(p.scrape_configs[1].dns_sd_configs[0]).toMatchObject({ names: ['tasks.gateway'], port: 8080 });
    expect(p.alerting.alertmanagers[0].static_configs[0].targets).toEqual(['alertmanager:9093']);
    const rules = parse(prometheusAlertRules()).groups[0].rules;
    expect(rules.find((r: { alert: string }) => r.alert === 'APIHighInvocationRate').expr).toContain('gateway_function_invocation_total');
    const am = parse(alertmanagerConfig());
    expect(am.receivers[0].webhook_configs[0]).toMatchObject({
      url: 'http://gateway:8080/system/alert',
      http_config: { basic_auth: { username: 'admin', password_file: '/run/secrets/basic-auth-password' } },
    });
  });

  it('changes the spec hash of only the service whose setting changed', () => {
    const a = desiredOpenFaaSStack({ architecture: 'x86_64', publish: 'ingress', gatewayPort: 8080 });
    const b = desiredOpenFaaSStack({ architecture: 'x86_64', publish: 'ingress', gatewayPort: 8081 });
    const c = desiredOpenFaaSStack({ architecture: 'x86_64', publish: 'ingress', gatewayPort: 8080, faasSwarmDockerApiVersion: '1.44' });
    const changed = (x: typeof a, y: typeof a) => x.services.filter((s, i) => s.specHash !== y.services[i]!.specHash).map((s) => s.shortName);
    expect(changed(a, desiredOpenFaaSStack({ architecture: 'x86_64', publish: 'ingress', gatewayPort: 8080 }))).toEqual([]);
    expect(changed(a, b)).toEqual(['gateway']);
    expect(changed(a, c)).toEqual(['faas-swarm']);
  });

  it('tells faas-swarm to speak Docker API 1.30 unless the daemon refuses it (Docker 29 without min-api-version)', () => {
    expect(compareApiVersions('1.44', '1.30')).toBeGreaterThan(0);
    expect(compareApiVersions('1.9', '1.30')).toBeLessThan(0);
    expect(faasSwarmApiVersion('1.12')).toBe('1.30'); // Docker 20-28
    expect(faasSwarmApiVersion('1.24')).toBe('1.30'); // Docker 29 with min-api-version lowered by pifaas provision
    expect(faasSwarmApiVersion('1.44')).toBe('1.44'); // Docker 29 as shipped
  });

  it('makes passwords from the CSPRNG: 256 bits, URL-safe, never the same', () => {
    const a = generatePassword();
    const b = generatePassword();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
  });
});
