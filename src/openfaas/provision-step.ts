// Why: `pifaas provision` ends with OpenFaaS on the swarm it formed: this is that cluster step, run
// through the leader's dockerode client (the Docker socket forwarded over SSH). It does not wait for
// the images to be pulled (minutes on a Pi); `pifaas openfaas install INVENTORY` waits and explains.
import type { ClusterStep } from '../swarm/provision.js';
import { installOpenFaaSOnSwarm } from './openfaas-install.js';

export function openfaasClusterStep(): ClusterStep {
  return {
    title: 'OpenFaaS stack',
    async run(ctx) {
      const s = ctx.inventory.settings;
      const outcome = await installOpenFaaSOnSwarm({
        docker: ctx.leader.docker,
        gatewayHost: ctx.hostAddress(ctx.leader.host),
        publish: s.openfaas_publish,
        gatewayPort: s.openfaas_gateway_port,
        onStep: (m) => ctx.report(m),
      });
      const changed = outcome.changes.filter((c) => c.action !== 'unchanged');
      return {
        changed: changed.length > 0,
        detail:
          `gateway ${outcome.gatewayUrl}, ${outcome.services.length} services (${changed.length ? changed.map((c) => `${c.name} ${c.action}`).join(', ') : 'all unchanged'}); credentials in ${outcome.credentialsFile}; ` +
          `not waited for (the nodes pull the images, minutes on a Pi): \`pifaas openfaas install ${ctx.inventory.file}\` waits for the gateway and names any service that cannot start`,
      };
    },
  };
}
