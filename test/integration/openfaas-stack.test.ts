// The OpenFaaS stack and function deployments on a real one-node Docker swarm (a dockerd of this
// suite's own). OpenFaaS's images cannot be pulled here, so the stack's tasks do not start: the specs
// are asserted, and the gateway wait must say why nothing starts. Functions are deployed through the
// test gateway whose provider does what faas-swarm does on this real swarm.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { saveCredentials } from '../../src/openfaas/credentials.js';
import { alertmanagerConfig, prometheusConfig } from '../../src/openfaas/monitoring-config.js';
import { convergeService } from '../../src/openfaas/stack-installer.js';
import { SPEC_HASH_LABEL } from '../../src/openfaas/swarm-stack.js';
import { dockerFunctionTasks } from '../../src/openfaas/swarm-tasks.js';
import { runCli } from '../openfaas/cli-run.js';
import { FakeGateway } from '../openfaas/fake-gateway.js';
import { swarmBackend } from '../openfaas/swarm-provider.js';
import { importBusyboxImage, startTestDockerd, type TestDockerd } from '../openfaas/t4-dockerd.js';

const PORT = 18080;
let d: TestDockerd;
let dir: string;
let env: NodeJS.ProcessEnv;
let node: { name: string; arch: string };

const savedCredentials = async () => {
  const file = path.join(dir, 'openfaas', 'config.yml');
  const auths = parse(await readFile(file, 'utf8')).auths as { gateway: string; auth: string; token: string }[];
  return auths.map((a) => ({ ...a, decoded: Buffer.from(a.token, 'base64').toString('utf8') }));
};
const install = (...args: string[]) => runCli(['openfaas', 'install', '--docker-host', `unix://${d.socket}`, ...args], { env, timeoutMs: 180_000 });
const stackServices = async (docker: Dockerode) => (await docker.listServices({ filters: { label: ['com.docker.stack.namespace=func'] } })).sort((a, b) => a.Spec!.Name!.localeCompare(b.Spec!.Name!));

beforeAll(async () => {
  d = await startTestDockerd();
  dir = await mkdtemp(path.join(tmpdir(), 't4-it-'));
  env = { OPENFAAS_CONFIG: path.join(dir, 'openfaas') };
  const info = await d.docker.info();
  node = { name: info.Name, arch: info.Architecture };
});

afterAll(async () => {
  await d?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('pifaas openfaas install on a real swarm', () => {
  it('creates the pinned stack through the Docker Engine API as the `func` stack', async () => {
    const r = await install('--publish', 'host', '--port', String(PORT), '--no-wait', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.gatewayUrl).toBe(`http://127.0.0.1:${PORT}`);
    expect(out.passwordGenerated).toBe(true);
    expect(out.changes.every((c: { action: string }) => c.action === 'created')).toBe(true);
    expect(out.changes.map((c: { kind: string }) => c.kind).sort()).toEqual(['config', 'config', 'config', 'network', 'secret', 'secret', ...Array(7).fill('service')]);

    const services = await stackServices(d.docker);
    const suffix = node.arch === 'aarch64' ? '-arm64' : node.arch.startsWith('armv') ? '-armhf' : '';
    expect(services.map((s) => `${s.Spec!.Name} ${(s.Spec!.TaskTemplate as Dockerode.ContainerTaskSpec).ContainerSpec!.Image}`)).toEqual([
      'func_alertmanager prom/alertmanager:v0.18.0',
      `func_basic-auth-plugin openfaas/basic-auth-plugin:0.18.18${suffix}`,
      `func_faas-swarm openfaas/faas-swarm:0.9.0${suffix}`,
      `func_gateway openfaas/gateway:0.18.18${suffix}`,
      'func_nats nats-streaming:0.17.0',
      'func_prometheus prom/prometheus:v2.11.0',
      'func_queue-worker openfaas/queue-worker:0.11.2',
    ]);
    const gateway = services.find((s) => s.Spec!.Name === 'func_gateway')!.Spec!;
    const task = gateway.TaskTemplate as Dockerode.ContainerTaskSpec;
    expect(task.ContainerSpec!.Env).toEqual(expect.arrayContaining(['upstream_timeout=70s', 'read_timeout=75s', 'write_timeout=75s', 'basic_auth=true']));
    expect(task.Placement!.Constraints).toEqual(['node.role == manager', 'node.platform.os == linux', `node.platform.arch == ${node.arch}`]);
    expect(gateway.EndpointSpec).toEqual({ Mode: 'dnsrr', Ports: [{ Protocol: 'tcp', TargetPort: 8080, PublishedPort: PORT, PublishMode: 'host' }] });
    expect(task.ContainerSpec!.Secrets!.map((s) => s.SecretName)).toEqual(['basic-auth-user', 'basic-auth-password']);

    const network = await d.docker.getNetwork('func_functions').inspect();
    expect(network).toMatchObject({ Driver: 'overlay', Attachable: true, Labels: { openfaas: 'true', 'com.docker.stack.namespace': 'func' } });
    expect((await d.docker.listSecrets()).map((s) => s.Spec!.Name).sort()).toEqual(['basic-auth-password', 'basic-auth-user']);
    const configs = await d.docker.listConfigs({ filters: { label: ['com.docker.stack.namespace=func'] } });
    const data = Object.fromEntries(configs.map((c) => [c.Spec!.Name.replace(/_[0-9a-f]{10}$/, ''), Buffer.from(c.Spec!.Data, 'base64').toString('utf8')]));
    expect(data.func_prometheus_config).toBe(prometheusConfig());
    expect(data.func_alertmanager_config).toBe(alertmanagerConfig());
    expect(Object.keys(data).sort()).toEqual(['func_alertmanager_config', 'func_prometheus_config', 'func_prometheus_rules']);

    // The Docker CLI sees a stack named func.
    const { stdout } = await promisify(execFile)('docker', ['stack', 'services', 'func', '--format', '{{.Name}}'], { env: { ...process.env, DOCKER_HOST: `unix://${d.socket}` } });
    expect(stdout.trim().split('\n').sort()).toEqual(services.map((s) => s.Spec!.Name));

    // Credentials where faas-cli reads them, mode 0600; the password (CSPRNG, 43 chars) never printed.
    const creds = await savedCredentials();
    expect(creds).toHaveLength(1);
    expect(creds[0]).toMatchObject({ gateway: `http://127.0.0.1:${PORT}`, auth: 'basic' });
    expect(creds[0]!.decoded).toMatch(/^admin:[A-Za-z0-9_-]{43}$/);
    expect((await stat(path.join(dir, 'openfaas', 'config.yml'))).mode & 0o777).toBe(0o600);
    expect(r.stdout + r.stderr).not.toContain(creds[0]!.decoded.slice(6));
  });

  it('changes nothing on a second run', async () => {
    const before = Object.fromEntries((await stackServices(d.docker)).map((s) => [s.Spec!.Name, s.Version!.Index]));
    const pw = (await savedCredentials())[0]!.decoded;
    const r = await install('--publish', 'host', '--port', String(PORT), '--no-wait');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^0 created, 0 updated, 13 unchanged, 0 removed$/m);
    const after = Object.fromEntries((await stackServices(d.docker)).map((s) => [s.Spec!.Name, s.Version!.Index]));
    expect(after).toEqual(before);
    expect((await savedCredentials())[0]!.decoded).toBe(pw);
    expect(r.stdout).toContain(`show the password with \`pifaas openfaas password --gateway http://127.0.0.1:${PORT}\``);
  });

  it('updates only the service whose setting changed, keeping the password under the new URL', async () => {
    const before = Object.fromEntries((await stackServices(d.docker)).map((s) => [s.Spec!.Name, s.Version!.Index]));
    const pw = (await savedCredentials())[0]!.decoded;
    const r = await install('--publish', 'host', '--port', String(PORT + 1), '--no-wait', '--json');
    expect(r.code).toBe(0);
    const changed = JSON.parse(r.stdout).changes.filter((c: { action: string }) => c.action !== 'unchanged');
    expect(changed).toEqual([{ kind: 'service', name: 'func_gateway', action: 'updated' }]);
    const after = await stackServices(d.docker);
    for (const s of after) {
      if (s.Spec!.Name === 'func_gateway') expect(s.Version!.Index).toBeGreaterThan(before[s.Spec!.Name!]!);
      else expect(s.Version!.Index).toBe(before[s.Spec!.Name!]);
    }
    expect(after.find((s) => s.Spec!.Name === 'func_gateway')!.Spec!.EndpointSpec!.Ports![0]!.PublishedPort).toBe(PORT + 1);
    const creds = await savedCredentials();
    expect(creds.find((c) => c.gateway === `http://127.0.0.1:${PORT + 1}`)?.decoded).toBe(pw);
    const shown = await runCli(['openfaas', 'password', '--gateway', `http://127.0.0.1:${PORT + 1}`], { env });
    expect(shown.stdout).toBe(`${pw.slice('admin:'.length)}\n`);
  });

  it('waits for the gateway and says why it cannot start (its image cannot be pulled here)', async () => {
    // The swarm has tried (and failed) to start the gateway since the last update.
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if ((await dockerFunctionTasks(d.docker).tasks('func_gateway')).some((t) => t.error)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const r = await install('--publish', 'host', '--port', String(PORT + 1), '--wait-timeout', '120');
    expect(r.code).toBe(1);
    const suffix = node.arch === 'aarch64' ? '-arm64' : node.arch.startsWith('armv') ? '-armhf' : '';
    // Every core service that cannot start is named, the gateway first.
    expect(r.stderr).toMatch(/^error: OpenFaaS cannot start:/m);
    expect(r.stderr).toContain(
      `func_gateway's image openfaas/gateway:0.18.18${suffix} is not on ${node.name} (linux/${node.arch}) and cannot be pulled: No such image: openfaas/gateway:0.18.18${suffix}`,
    );
    expect(r.stderr).toContain('hint: the nodes pull OpenFaaS\'s images from Docker Hub');
  });

  it('--reset-password gives the swarm a new password and re-creates the services that read it', async () => {
    const secretsBefore = (await d.docker.listSecrets()).map((s) => s.ID).sort();
    const pw = (await savedCredentials()).find((c) => c.gateway.endsWith(`:${PORT + 1}`))!.decoded;
    const r = await install('--publish', 'host', '--port', String(PORT + 1), '--no-wait', '--reset-password', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.passwordGenerated).toBe(true);
    const removed = out.changes.filter((c: { action: string }) => c.action === 'removed').map((c: { name: string }) => c.name).sort();
    expect(removed).toEqual(['basic-auth-password', 'basic-auth-user', 'func_alertmanager', 'func_basic-auth-plugin', 'func_faas-swarm', 'func_gateway', 'func_queue-worker']);
    expect((await d.docker.listSecrets()).map((s) => s.ID).sort()).not.toEqual(secretsBefore);
    const now = (await savedCredentials()).find((c) => c.gateway.endsWith(`:${PORT + 1}`))!.decoded;
    expect(now).toMatch(/^admin:[A-Za-z0-9_-]{43}$/);
    expect(now).not.toBe(pw);
    expect((await stackServices(d.docker)).length).toBe(7);
  });

  it('a service update that loses a race with another update of that service is made again on the service as it now is', async () => {
    // Swarm refuses an update made from an older version of the service ("update out of sequence").
    // Here another update (a label, as `docker service update --label-add` makes) lands between the
    // listing of the services and the update of one of them.
    const listed = (await stackServices(d.docker)).find((s) => s.Spec!.Name === 'func_nats')!;
    const other = await d.docker.getService(listed.ID).inspect();
    await d.docker.getService(listed.ID).update({ _query: { version: other.Version.Index }, _body: { ...other.Spec, Labels: { ...other.Spec.Labels, 'race.other': '1' } } } as never);
    const wanted = structuredClone(listed.Spec!) as Dockerode.ServiceSpec;
    wanted.Labels = { ...wanted.Labels, [SPEC_HASH_LABEL]: 'race-test' };
    expect(await convergeService(d.docker, listed, wanted, 'race-test')).toBe(true);
    const now = await d.docker.getService(listed.ID).inspect();
    expect(now.Spec.Labels[SPEC_HASH_LABEL]).toBe('race-test');
    expect(now.Spec.Labels['race.other']).toBeUndefined();
    // Made again on the service as it now is, it is as wanted: nothing to send.
    expect(await convergeService(d.docker, now, wanted, 'race-test')).toBe(false);
    // The next install puts the release's spec back on it, and on nothing else.
    const r = await install('--publish', 'host', '--port', String(PORT + 1), '--no-wait', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).changes.filter((c: { action: string }) => c.action !== 'unchanged')).toEqual([{ kind: 'service', name: 'func_nats', action: 'updated' }]);
  });
});

describe('pifaas deploy on a real swarm (the test gateway doing what faas-swarm does)', () => {
  let gw: FakeGateway;
  let denv: NodeJS.ProcessEnv;
  beforeAll(async () => {
    gw = new FakeGateway({ provider: 'faas-swarm', backend: swarmBackend(d.docker) });
    await gw.start();
    denv = { ...env, OPENFAAS_URL: gw.url };
    await saveCredentials(gw.url, { username: gw.username, password: gw.password }, denv);
    await importBusyboxImage(d.docker, 'pifaas/faas-resnet:latest', { foreignEntrypoint: true });
    await importBusyboxImage(d.docker, 't4/httpd:1', { cmd: ['httpd', '-f', '-p', '8080'] });
  });
  afterAll(async () => gw?.stop());

  it('surfaces "exec format error" from the swarm\'s tasks when the image was built for another CPU', async () => {
    const started = Date.now();
    const r = await runCli(['deploy', 'faas-resnet', '--docker-host', `unix://${d.socket}`, '--timeout', '150'], { env: denv, timeoutMs: 200_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: faas-resnet cannot run on ${node.name} (linux/${node.arch}): exec format error (the image pifaas/faas-resnet:latest was built for another CPU)`);
    expect(r.stderr).toMatch(/hint: build the image for linux\/(amd64|arm64|arm\/v7) as well/);
    // It does not sit out the whole timeout.
    expect(Date.now() - started).toBeLessThan(100_000);
    const svc = (await d.docker.listServices({ filters: { name: ['faas-resnet'] } }))[0]!;
    expect(svc.Spec!.Labels).toMatchObject({ 'com.openfaas.function': 'faas-resnet', function: 'true' });
  });

  it('says the image is missing on the node when it was never sent there', async () => {
    const r = await runCli(['deploy', 'faas-digits', '--docker-host', `unix://${d.socket}`, '--timeout', '150'], { env: denv, timeoutMs: 200_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: faas-digits's image pifaas/faas-digits:latest is not on ${node.name} (linux/${node.arch}) and cannot be pulled: No such image: pifaas/faas-digits:latest`);
    expect(r.stderr).toContain('hint: send the image to every node with `pifaas push faas-digits --to INVENTORY`');
  });

  it('deploys a function that starts: ready when its task runs, then updated in place', async () => {
    const stackFile = path.join(dir, 'stack.yml');
    await writeFile(stackFile, 'provider: {name: openfaas}\nfunctions:\n  t4-web:\n    image: t4/httpd:1\n    labels: {com.openfaas.scale.min: 1}\n    limits: {memory: 64M}\n');
    const r = await runCli(['deploy', 't4-web', '-f', stackFile, '--docker-host', `unix://${d.socket}`, '--json'], { env: denv, timeoutMs: 200_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).functions[0]).toMatchObject({ name: 't4-web', action: 'created', status: { replicas: 1, availableReplicas: 1 } });
    const svc = (await d.docker.listServices({ filters: { name: ['t4-web'] } }))[0]!;
    const net = await d.docker.getNetwork('func_functions').inspect();
    expect((svc.Spec!.TaskTemplate as Dockerode.ContainerTaskSpec).Networks).toEqual([{ Target: net.Id }]);
    const again = await runCli(['deploy', 't4-web', '-f', stackFile, '--json'], { env: denv, timeoutMs: 200_000 });
    expect(JSON.parse(again.stdout).functions[0]).toMatchObject({ action: 'updated', status: { availableReplicas: 1 } });
    const rm = await runCli(['rm', 't4-web', '-f', stackFile], { env: denv });
    expect(rm.stdout).toBe('removed t4-web\n');
    expect(await d.docker.listServices({ filters: { name: ['t4-web'] } })).toEqual([]);
  });
});
