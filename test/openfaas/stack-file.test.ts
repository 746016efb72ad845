import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OPENFAAS_SWARM_RELEASE as R, goDuration } from '../../src/openfaas/release.js';
import { desiredOpenFaaSStack } from '../../src/openfaas/swarm-stack.js';
import { cpuToNanoCpus, expandEnv, loadStackFile, parseStackFile, stackFunction, toFunctionDeployment } from '../../src/openfaas/stack-file.js';

const seconds = (d: string) => {
  const m = /^(\d+)s$/.exec(d);
  if (!m) throw new Error(`not a seconds duration: ${d}`);
  return Number(m[1]);
};

describe('the project\'s stack.yml', () => {
  it('defines faas-resnet and faas-digits with image, environment, labels, limits and constraints', async () => {
    const stack = await loadStackFile('stack.yml', {});
    expect(stack.provider).toEqual({ name: 'openfaas', gateway: 'http://127.0.0.1:8080' });
    expect(Object.keys(stack.functions)).toEqual(['faas-resnet', 'faas-digits']);
    const resnet = stackFunction(stack, 'faas-resnet');
    // The name `pifaas build faas-resnet` gives its image and `pifaas push` gives it on every node.
    expect(resnet.image).toBe('pifaas/faas-resnet:latest');
    expect(resnet.environment).toMatchObject({ PIFAAS_FUNCTION: 'faas-resnet', port: '8080' });
    // The model baked into the image (its PIFAAS_MODEL) is served unless stack.yml names another.
    expect(resnet.environment.PIFAAS_MODEL).toBeUndefined();
    expect(resnet.labels).toMatchObject({ 'com.openfaas.scale.min': '1' });
    expect(resnet.limits?.memory).toBe('512M');
    expect(resnet.constraints).toEqual(['node.platform.os == linux']);
    const digits = stackFunction(stack, 'faas-digits');
    expect(digits.environment).toMatchObject({ PIFAAS_FUNCTION: 'faas-digits' });
  });

  it('has function timeouts that fit inside the gateway\'s (exec < read/write <= gateway upstream < gateway read/write)', async () => {
    const stack = await loadStackFile('stack.yml', {});
    const gwEnv = Object.fromEntries(
      desiredOpenFaaSStack({ architecture: 'aarch64', publish: 'ingress', gatewayPort: 8080 })
        .services.find((s) => s.shortName === 'gateway')!
        .spec.TaskTemplate.ContainerSpec.Env!.map((e) => e.split('=') as [string, string]),
    );
    const upstream = seconds(gwEnv.upstream_timeout!);
    expect(seconds(gwEnv.read_timeout!)).toBeGreaterThan(upstream);
    expect(seconds(gwEnv.write_timeout!)).toBeGreaterThan(upstream);
    for (const fn of Object.values(stack.functions)) {
      const exec = seconds(fn.environment.exec_timeout!);
      expect(exec).toBeGreaterThanOrEqual(60);
      expect(seconds(fn.environment.read_timeout!)).toBeGreaterThan(exec);
      expect(seconds(fn.environment.write_timeout!)).toBeGreaterThan(exec);
      expect(seconds(fn.environment.write_timeout!)).toBeLessThanOrEqual(upstream);
      expect(fn.environment.exec_timeout).toBe(goDuration(R.timeouts.functionExec));
      expect(fn.environment.write_timeout).toBe(goDuration(R.timeouts.functionReadWrite));
    }
  });

  it('expands ${VAR:-default} from the environment, as faas-cli does', async () => {
    const text = 'provider: {name: openfaas}\nfunctions:\n  f:\n    image: pifaas/f:${TAG:-latest}\n    environment: {PIFAAS_MODEL: "${M:-mnist-8}"}\n';
    expect(stackFunction(await parseStackFile(text, 's.yml', {}), 'f')).toMatchObject({ image: 'pifaas/f:latest', environment: { PIFAAS_MODEL: 'mnist-8' } });
    expect(stackFunction(await parseStackFile(text, 's.yml', { TAG: '0.2.0', M: 'digits-8x8' }), 'f')).toMatchObject({ image: 'pifaas/f:0.2.0', environment: { PIFAAS_MODEL: 'digits-8x8' } });
    expect(expandEnv('a ${X} b ${Y:-dflt} c ${Z:-}', { X: '1' })).toBe('a 1 b dflt c ');
  });

  it('keeps $$ as a literal $, so $${VAR} reaches the function as ${VAR} (drone/envsubst, which faas-cli uses)', async () => {
    expect(expandEnv('$${X} and ${X}, pa$$word, $X', { X: '1' })).toBe('${X} and 1, pa$word, $X');
    const text = 'provider: {name: openfaas}\nfunctions:\n  f:\n    image: pifaas/f:1\n    environment: {TEMPLATE: "$${HOME}/models"}\n';
    expect(stackFunction(await parseStackFile(text, 's.yml', { HOME: '/root' }), 'f').environment.TEMPLATE).toBe('${HOME}/models');
  });

  it('takes YAML merge keys (<<: *anchor), as faas-cli does', async () => {
    const text = [
      'provider: {name: openfaas}',
      'functions:',
      '  fn-a:',
      '    image: pifaas/a:1',
      '    environment: &common',
      '      write_timeout: 30s',
      '      max_inflight: "4"',
      '  fn-b:',
      '    image: pifaas/b:1',
      '    environment:',
      '      <<: *common',
      '      max_inflight: "8"',
    ].join('\n');
    const stack = await parseStackFile(text, 's.yml', {});
    expect(stackFunction(stack, 'fn-b').environment).toEqual({ write_timeout: '30s', max_inflight: '8' });
    expect(stackFunction(stack, 'fn-a').environment).toEqual({ write_timeout: '30s', max_inflight: '4' });
  });
});

describe('stack file errors name the file, line and column', () => {
  it('reports a missing image, a bad provider and a bad memory amount at their places', async () => {
    const text = ['provider:', '  name: aws', 'functions:', '  fn-a:', '    lang: dockerfile', '  fn-b:', '    image: x/y:1', '    limits:', '      memory: lots'].join('\n');
    const err = await parseStackFile(text, 'my/stack.yml').catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    const lines = (err as Error).message.split('\n');
    expect(lines[0]).toBe('my/stack.yml is not a valid stack file:');
    expect(lines).toContain('  my/stack.yml:2:3: provider.name: provider.name must be openfaas');
    expect(lines.some((l) => /^ {2}my\/stack\.yml:4:3: functions\.fn-a\.image: /.test(l))).toBe(true);
    expect(lines).toContain('  my/stack.yml:9:7: functions.fn-b.limits.memory: "lots" is not an amount of memory; write it like 512M or 1Gi');
  });

  it('refuses unknown keys (typos) and bad function names', async () => {
    const err = await parseStackFile('provider: {name: openfaas}\nfunctions:\n  Fn_A:\n    image: a\n    enviroment: {}\n', 's.yml').catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(/s\.yml:3:3: functions\.Fn_A: a function name has lower-case letters/);
    expect((err as Error).message).toMatch(/s\.yml:5:5: functions\.Fn_A\.enviroment: unknown key "enviroment" \(not in faas-cli's stack format\)/);
  });

  it('reports YAML syntax errors with their position, and a missing file with what to do', async () => {
    await expect(parseStackFile('provider: {name: openfaas\n', 's.yml')).rejects.toThrow(/^s\.yml:\d+:\d+: /);
    await expect(loadStackFile('/nonexistent/stack.yml')).rejects.toThrow('there is no stack file at /nonexistent/stack.yml');
  });

  it('names the functions a stack has when asked for another', async () => {
    const stack = await loadStackFile('stack.yml', {});
    expect(() => stackFunction(stack, 'faas-resnt')).toThrow('stack.yml defines no function "faas-resnt"');
  });
});

describe('stack.yml function -> FunctionDeployment', () => {
  it('merges environment_file under environment, and converts CPU to nano-CPUs for faas-swarm only', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 't4-stack-'));
    try {
      await writeFile(path.join(dir, 'common.yml'), 'environment:\n  A: from-file\n  B: from-file\n');
      await writeFile(
        path.join(dir, 'stack.yml'),
        'provider: {name: openfaas}\nfunctions:\n  f:\n    image: i:1\n    fprocess: node main.js\n    environment_file: [common.yml]\n    environment: {B: inline}\n    secrets: [k]\n    requests: {cpu: "0.25", memory: 64Mi}\n    readonly_root_filesystem: true\n',
      );
      const fn = stackFunction(await loadStackFile(path.join(dir, 'stack.yml'), {}), 'f');
      expect(fn.environment).toEqual({ A: 'from-file', B: 'inline' });
      expect(toFunctionDeployment(fn, { orchestration: 'swarm' })).toEqual({
        service: 'f',
        image: 'i:1',
        envProcess: 'node main.js',
        envVars: { A: 'from-file', B: 'inline' },
        secrets: ['k'],
        labels: {},
        requests: { cpu: '250000000', memory: '64Mi' },
        readOnlyRootFilesystem: true,
      });
      expect(toFunctionDeployment(fn, { orchestration: 'kubernetes', namespace: 'openfaas-fn' })).toMatchObject({
        namespace: 'openfaas-fn',
        requests: { cpu: '0.25', memory: '64Mi' },
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(cpuToNanoCpus('2')).toBe('2000000000');
    expect(cpuToNanoCpus('500m')).toBe('500000000');
  });
});
