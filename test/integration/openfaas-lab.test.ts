// OpenFaaS on a real multi-node lab swarm (nodes in network namespaces with sshd and dockerd), put
// there by `pifaas provision`'s OpenFaaS step and by `pifaas openfaas install INVENTORY`, both through
// the Docker socket forwarded over SSH. The lab has no IPVS: the gateway is published in host mode.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { loadInventory } from '../../src/inventory/inventory.js';
import { labDown, labNodeExec, labUp, type Lab } from '../../src/lab/lab.js';
import { openfaasClusterStep } from '../../src/openfaas/provision-step.js';
import { InventoryConnector } from '../../src/ssh/inventory-connect.js';
import { provision } from '../../src/swarm/provision.js';
import { dockerFor } from '../../src/operator/docker-client.js';
import type { Operator } from '../../src/operator/operator.js';
import { saveCredentials } from '../../src/openfaas/credentials.js';
import { runCli } from '../openfaas/cli-run.js';
import { FakeGateway } from '../openfaas/fake-gateway.js';
import { swarmBackend } from '../openfaas/swarm-provider.js';
import { importBusyboxImage } from '../openfaas/t4-dockerd.js';
import { startImageTestEnv, type ImageTestEnv } from '../image/image-test-env.js';

const LAB = 't4l';
const SUBNET = '10.94.1.0/24';
const FUNCTION_PORT = 18090;
const TIGER = path.resolve(import.meta.dirname, '../../../shared/testdata/images/tiger.jpg');
let dir: string;
let lab: Lab;
let inventoryFile: string;
let env: NodeJS.ProcessEnv;

const onManager = async (script: string) => (await labNodeExec(LAB, `${LAB}-1`, script)).stdout.trim();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pifaas-t4-lab-'));
  env = { OPENFAAS_CONFIG: path.join(dir, 'openfaas') };
  // The provisioning step runs in this process: its credentials go to the test's folder.
  process.env.OPENFAAS_CONFIG = env.OPENFAAS_CONFIG;
  lab = await labUp({ name: LAB, nodes: 2, subnet: SUBNET, dir });
  // The lab's own inventory, as `pifaas lab up` wrote it (it publishes the gateway in host mode).
  inventoryFile = lab.inventoryFile;
});

afterAll(async () => {
  delete process.env.OPENFAAS_CONFIG;
  await labDown(LAB);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('OpenFaaS on a 2-node lab swarm', () => {
  it('is installed by pifaas provision\'s OpenFaaS step through the leader\'s Docker over SSH', async () => {
    const inventory = await loadInventory(inventoryFile);
    const result = await provision(inventory, {
      connector: new InventoryConnector(inventory, { connectRetryMs: 30_000 }),
      renderer: 'silent',
      clusterSteps: [openfaasClusterStep()],
    });
    expect(result.swarm.error).toBeUndefined();
    expect(result.clusterSteps).toHaveLength(1);
    expect(result.clusterSteps[0]).toMatchObject({ title: 'OpenFaaS stack', status: 'changed' });
    expect(result.clusterSteps[0]!.detail).toMatch(new RegExp(`^gateway http://${lab.nodes[0]!.address.replace(/\./g, '\\.')}:8080, 7 services`));
    // Provision does not wait for the images: it says so, and what waits for them.
    expect(result.clusterSteps[0]!.detail).toContain(`not waited for (the nodes pull the images, minutes on a Pi): \`pifaas openfaas install ${inventoryFile}\` waits for the gateway`);

    const services = (await onManager("docker stack services func --format '{{.Name}} {{.Image}}'")).split('\n').sort();
    expect(services).toEqual([
      'func_alertmanager prom/alertmanager:v0.18.0',
      'func_basic-auth-plugin openfaas/basic-auth-plugin:0.18.18',
      'func_faas-swarm openfaas/faas-swarm:0.9.0',
      'func_gateway openfaas/gateway:0.18.18',
      'func_nats nats-streaming:0.17.0',
      'func_prometheus prom/prometheus:v2.11.0',
      'func_queue-worker openfaas/queue-worker:0.11.2',
    ]);
    expect(await onManager("docker service inspect func_gateway --format '{{json .Endpoint.Spec}}'")).toBe(
      '{"Mode":"dnsrr","Ports":[{"Protocol":"tcp","TargetPort":8080,"PublishedPort":8080,"PublishMode":"host"}]}',
    );
    expect(await onManager("docker network inspect func_functions --format '{{.Driver}} {{.Attachable}} {{.Labels.openfaas}}'")).toBe('overlay true true');
    expect(await onManager("docker secret ls --format '{{.Name}}' | sort | tr '\\n' ' '")).toBe('basic-auth-password basic-auth-user');
    // The gateway's tasks go to the manager (host publishing: the manager's address is the URL).
    const managerId = await onManager('docker info --format "{{.Swarm.NodeID}}"');
    const gatewayNodes = (await onManager("docker service ps func_gateway --format '{{.Node}}'")).split('\n');
    expect(gatewayNodes.every((n) => n === `${LAB}-1`)).toBe(true);
    expect(managerId).toMatch(/^\w+$/);

    const cfg = parse(await readFile(path.join(dir, 'openfaas', 'config.yml'), 'utf8'));
    expect(cfg.auths.map((a: { gateway: string }) => a.gateway)).toEqual([`http://${lab.nodes[0]!.address}:8080`]);

    // Provision again from a machine without the gateway's password: the step's error and what to do.
    const elsewhere = await runCli(['provision', inventoryFile], { env: { OPENFAAS_CONFIG: path.join(dir, 'elsewhere') }, spawn: true, timeoutMs: 180_000 });
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stdout).toContain(
      'error: OpenFaaS stack: the swarm already has an OpenFaaS password, and this machine has no copy of it\n' +
        'hint: copy ~/.openfaas/config.yml from the machine that installed OpenFaaS, or give the swarm a new password with `pifaas openfaas install INVENTORY --reset-password`',
    );
  });

  it('is left unchanged by `pifaas openfaas install INVENTORY` (over SSH), which then explains why nothing starts', async () => {
    const again = await runCli(['openfaas', 'install', inventoryFile, '--no-wait', '--json'], { env, timeoutMs: 180_000 });
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    const out = JSON.parse(again.stdout);
    expect(out.changes.filter((c: { action: string }) => c.action !== 'unchanged')).toEqual([]);
    expect(out.gatewayUrl).toBe(`http://${lab.nodes[0]!.address}:8080`);
    expect(out.publish).toBe('host');

    // The same swarm through an inventory that names its manager by an SSH config alias (as Ansible
    // allows), with --ssh-config: reached over SSH, and the gateway URL is the alias's HostName.
    const sshConfig = path.join(dir, 'alias_ssh_config');
    await writeFile(sshConfig, `Host t4-manager\n  HostName ${lab.nodes[0]!.address}\n`);
    const doc = parse(await readFile(inventoryFile, 'utf8'));
    doc.all.children.managers.hosts = { 't4-manager': {} };
    const aliased = path.join(dir, 'inventory-alias.yaml');
    await writeFile(aliased, stringify(doc), { mode: 0o600 });
    const viaAlias = await runCli(['openfaas', 'install', aliased, '--ssh-config', sshConfig, '--no-wait', '--json'], { env, timeoutMs: 180_000 });
    expect(viaAlias.stderr).toBe('');
    expect(JSON.parse(viaAlias.stdout)).toMatchObject({ gatewayUrl: `http://${lab.nodes[0]!.address}:8080` });
    expect(JSON.parse(viaAlias.stdout).changes.filter((c: { action: string }) => c.action !== 'unchanged')).toEqual([]);

    // No registry is reachable from the lab: the wait ends early, naming the node and the image of
    // every core service that cannot start - also one whose task is still on its way (as the gateway's
    // is right after it is restarted here) when the others have already failed.
    await onManager('docker service update --detach --force func_gateway >/dev/null');
    const wait = await runCli(['openfaas', 'install', inventoryFile, '--wait-timeout', '180'], { env, timeoutMs: 240_000 });
    expect(wait.code).toBe(1);
    expect(wait.stderr).toMatch(/^error: OpenFaaS cannot start:/m);
    for (const [svc, image] of [['gateway', 'gateway:0.18.18'], ['faas-swarm', 'faas-swarm:0.9.0'], ['basic-auth-plugin', 'basic-auth-plugin:0.18.18']] as const) {
      const node = svc === 'gateway' ? `${LAB}-1` : `${LAB}-[12]`;
      expect(wait.stderr).toMatch(new RegExp(`func_${svc}'s image openfaas/${image.replace(/\./g, '\\.')} is not on ${node} \\(linux/x86_64\\) and cannot be pulled`));
    }
  });

  it('explains through -i INVENTORY (over SSH) why a deployed function cannot run on a lab node', async () => {
    const inventory = await loadInventory(inventoryFile);
    const manager: Operator = await new InventoryConnector(inventory, { connectRetryMs: 10_000 }).connect(inventory.managers[0]!);
    const docker = dockerFor(manager);
    // The provider (faas-swarm's behaviour, on the lab's real swarm) creates the function service.
    const gw = new FakeGateway({ provider: 'faas-swarm', backend: swarmBackend(docker) });
    try {
      await gw.start();
      await saveCredentials(gw.url, { username: gw.username, password: gw.password }, env);
      // An image built for another CPU, present on both nodes.
      await importBusyboxImage(docker, 'pifaas/faas-resnet:latest', { foreignEntrypoint: true });
      const worker: Operator = await new InventoryConnector(inventory, { connectRetryMs: 10_000 }).connect(inventory.workers[0]!);
      await importBusyboxImage(dockerFor(worker), 'pifaas/faas-resnet:latest', { foreignEntrypoint: true });
      await worker.close();
      const r = await runCli(['deploy', 'faas-resnet', '-i', inventoryFile, '--timeout', '150'], { env: { ...env, OPENFAAS_URL: gw.url }, timeoutMs: 200_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`error: faas-resnet cannot run on ${LAB}-[12] \\(linux/x86_64\\): exec format error \\(the image pifaas/faas-resnet:latest was built for another CPU\\)`));
      expect(r.stderr).toContain('hint: build the image for linux/amd64 as well');
    } finally {
      await gw.stop();
      await docker.getService('faas-resnet').remove().catch(() => undefined);
      await manager.close();
    }
  });
});

describe('the real function image on the lab swarm', () => {
  let images: ImageTestEnv | undefined;
  afterAll(async () => images?.stop());

  it('is built, side-loaded onto the nodes, deployed as faas-swarm would, and answers the tiger photo through host-mode publishing', async () => {
    // pifaas build's test daemon, with stand-in base images (no registry is reachable here).
    images = await startImageTestEnv();
    const withDocker = { ...env, DOCKER_HOST: images.dockerHost };
    const built = await runCli(['build', 'faas-resnet', '--platforms', 'linux/amd64', '--json'], { env: withDocker });
    expect(built.code, built.stderr).toBe(0);
    expect(JSON.parse(built.stdout).localTag).toBe('pifaas/faas-resnet:latest');
    const pushed = await runCli(['push', 'faas-resnet', '--to', inventoryFile, '--json'], { env: withDocker });
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(JSON.parse(pushed.stdout).nodes.map((n: { node: string; status: string }) => [n.node, n.status])).toEqual([
      [`${LAB}-1`, 'sent'],
      [`${LAB}-2`, 'sent'],
    ]);

    const inventory = await loadInventory(inventoryFile);
    const manager: Operator = await new InventoryConnector(inventory, { connectRetryMs: 10_000 }).connect(inventory.managers[0]!);
    const docker = dockerFor(manager);
    // faas-swarm's service (labels, network func_functions), its port published in host mode on the
    // node that runs it, DNS round robin: the lab's kernel has no IPVS.
    const gw = new FakeGateway({ provider: 'faas-swarm', backend: swarmBackend(docker, { hostPort: FUNCTION_PORT, dnsrr: true }) });
    try {
      await gw.start();
      await saveCredentials(gw.url, { username: gw.username, password: gw.password }, env);
      const r = await runCli(['deploy', 'faas-resnet', '-i', inventoryFile, '--no-call', '--timeout', '300', '--json'], { env: { ...env, OPENFAAS_URL: gw.url } });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).functions[0]).toMatchObject({ name: 'faas-resnet', status: { availableReplicas: 1 } });
      const svc = await docker.getService('faas-resnet').inspect();
      expect(svc.Spec.Labels).toMatchObject({ 'com.openfaas.function': 'faas-resnet', function: 'true' });
      const net = await docker.getNetwork('func_functions').inspect();
      expect(svc.Spec.TaskTemplate.Networks).toEqual([{ Target: net.Id }]);

      // curl --data-binary @tiger.jpg http://NODE:PORT/ on the node running the task.
      const nodeName = await onManager("docker service ps faas-resnet --filter desired-state=running --format '{{.Node}}'");
      const address = lab.nodes.find((n) => n.name === nodeName.split('\n')[0])!.address;
      const res = await fetch(`http://${address}:${FUNCTION_PORT}/function/faas-resnet`, {
        method: 'POST',
        body: await readFile(TIGER),
        headers: { 'content-type': 'image/jpeg' },
        signal: AbortSignal.timeout(120_000),
      });
      expect(res.status).toBe(200);
      const answer = (await res.json()) as { model: string; predictions: { index: number; label: string; probability: number }[] };
      expect(answer.predictions[0]!.index).toBe(292);
      expect(answer.predictions[0]!.label).toMatch(/tiger/);
      expect(answer.predictions[0]!.probability).toBeGreaterThan(0.5);
    } finally {
      await gw.stop();
      await docker.getService('faas-resnet').remove().catch(() => undefined);
      await manager.close();
    }
  });
});
