import { describe, expect, it } from 'vitest';
import { mergeDaemonConfig, MIN_API_VERSION } from '../../src/swarm/docker-setup.js';
import { desiredLabels } from '../../src/swarm/swarm-cluster.js';

describe('daemon.json merge', () => {
  it('adds log rotation to an empty config', () => {
    expect(mergeDaemonConfig({}, '20.10.24')).toEqual({ 'log-driver': 'json-file', 'log-opts': { 'max-size': '10m', 'max-file': '3' } });
  });

  it("keeps the user's keys and values, adding only what is missing", () => {
    const existing = { 'data-root': '/mnt/ssd/docker', 'log-opts': { 'max-size': '50m' }, 'insecure-registries': ['pi1:5000'] };
    expect(mergeDaemonConfig(existing, '24.0.7')).toEqual({
      'data-root': '/mnt/ssd/docker',
      'insecure-registries': ['pi1:5000'],
      'log-driver': 'json-file',
      'log-opts': { 'max-size': '50m', 'max-file': '3' },
    });
  });

  it('leaves other log drivers alone', () => {
    expect(mergeDaemonConfig({ 'log-driver': 'journald' }, '24.0.7')).toEqual({ 'log-driver': 'journald' });
  });

  it('sets min-api-version only on Docker 29 and later (older engines refuse the key)', () => {
    expect(mergeDaemonConfig({}, '29.0.1')['min-api-version']).toBe(MIN_API_VERSION);
    expect(mergeDaemonConfig({}, '28.5.2')['min-api-version']).toBeUndefined();
    expect(mergeDaemonConfig({ 'min-api-version': '1.30' }, '29.1.0')['min-api-version']).toBe('1.30');
  });
});

describe('swarm node labels', () => {
  it('name, arch and Pi model, plus pifaas_node_labels', () => {
    const host = { name: 'pi1', settings: { node_labels: { disk: 'ssd' } } } as never;
    expect(desiredLabels({ host, facts: { arch: 'aarch64', piModel: 'Raspberry Pi 4 Model B Rev 1.4' } as never })).toEqual({
      'pifaas.name': 'pi1',
      'pifaas.arch': 'aarch64',
      'pifaas.pi-model': 'Raspberry Pi 4 Model B Rev 1.4',
      disk: 'ssd',
    });
  });
});
