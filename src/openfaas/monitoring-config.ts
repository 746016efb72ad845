// Why: OpenFaaS's auto-scaling on Swarm is Prometheus watching the gateway's invocation rate and
// Alertmanager calling the gateway's /system/alert when it is high. These are the three files the
// stack's Prometheus and Alertmanager services read (as Swarm configs), built from objects so the
// gateway's DNS name, port and secret path stay in step with the service specs.
import { stringify } from 'yaml';
import { OPENFAAS_SWARM_RELEASE } from './release.js';

const SECRET_DIR = '/run/secrets';

/** prometheus.yml: scrape Prometheus itself and every gateway task; send alerts to Alertmanager. */
export function prometheusConfig(): string {
  return stringify({
    global: { scrape_interval: '15s', evaluation_interval: '15s', external_labels: { monitor: 'faas-monitor' } },
    rule_files: ['alert.rules.yml'],
    scrape_configs: [
      { job_name: 'prometheus', scrape_interval: '5s', static_configs: [{ targets: ['localhost:9090'] }] },
      {
        job_name: 'gateway',
        scrape_interval: '5s',
        // tasks.gateway resolves to every gateway task, so each replica is scraped.
        dns_sd_configs: [{ names: ['tasks.gateway'], port: 8080, type: 'A', refresh_interval: '5s' }],
      },
    ],
    alerting: { alertmanagers: [{ static_configs: [{ targets: ['alertmanager:9093'] }] }] },
  });
}

/** alert.rules.yml: a target is down; a function is called more than 5 times a second (scale up). */
export function prometheusAlertRules(): string {
  return stringify({
    groups: [
      {
        name: 'openfaas',
        rules: [
          { alert: 'service_down', expr: 'up == 0' },
          {
            alert: 'APIHighInvocationRate',
            expr: 'sum(rate(gateway_function_invocation_total{code="200"}[10s])) BY (function_name) > 5',
            for: '5s',
            labels: { service: 'gateway', severity: 'major', value: '{{$value}}' },
            annotations: {
              description: 'High invocation total on {{ $labels.instance }}',
              summary: 'High invocation total on {{ $labels.instance }}',
            },
          },
        ],
      },
    ],
  });
}

/** alertmanager.yml: deliver the scale-up alerts to the gateway, authenticated with the stack's secret. */
export function alertmanagerConfig(): string {
  return stringify({
    route: {
      group_by: ['alertname', 'cluster', 'service'],
      group_wait: '5s',
      group_interval: '10s',
      repeat_interval: '30s',
      receiver: 'scale-up',
      routes: [{ match: { service: 'gateway', receiver: 'scale-up', severity: 'major' } }],
    },
    inhibit_rules: [{ source_match: { severity: 'critical' }, target_match: { severity: 'warning' }, equal: ['alertname', 'cluster', 'service'] }],
    receivers: [
      {
        name: 'scale-up',
        webhook_configs: [
          {
            url: 'http://gateway:8080/system/alert',
            send_resolved: true,
            http_config: {
              basic_auth: {
                username: OPENFAAS_SWARM_RELEASE.adminUser,
                password_file: `${SECRET_DIR}/${OPENFAAS_SWARM_RELEASE.secrets.password}`,
              },
            },
          },
        ],
      },
    ],
  });
}
