// Why: provisioning ends with cluster-wide steps that belong to other areas (the OpenFaaS stack
// first). `pifaas provision` runs the steps listed here, in order, after the swarm is formed; an
// area adds its step by appending it to this list (each step must be idempotent and gets the
// leader's operator and dockerode client through ClusterContext).
import { openfaasClusterStep } from '../openfaas/provision-step.js';
import type { ClusterStep } from './provision.js';

/** The cluster-wide steps `pifaas provision` runs after forming the swarm. */
export function defaultClusterSteps(): ClusterStep[] {
  return [openfaasClusterStep()];
}
