import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import type { PolicyDocument } from '../../modules/iam';

export type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

export interface SimulatedRequest {
  readonly action: string;
  readonly resource: string;
  readonly principal?: string;
  readonly context?: Record<string, string | string[]>;
  readonly accountId?: string;
}

/** Evaluates one request against identity (and optionally resource and permissions-boundary) policies with @cloud-copilot/iam-simulate. */
export async function decide(
  identityPolicy: PolicyDocument | undefined,
  request: SimulatedRequest,
  resourcePolicy?: PolicyDocument,
  options: { permissionBoundary?: PolicyDocument } = {},
): Promise<Decision> {
  const accountId = request.accountId ?? '111111111111';
  const simulation: Simulation = {
    identityPolicies: identityPolicy ? [{ name: 'policy', policy: identityPolicy }] : [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy,
    permissionBoundaryPolicies: options.permissionBoundary ? [{ name: 'boundary', policy: options.permissionBoundary }] : undefined,
    request: {
      action: request.action,
      principal: request.principal ?? `arn:aws:iam::${accountId}:role/sluice-test`,
      resource: { accountId, resource: request.resource },
      contextVariables: request.context ?? {},
    },
  } as Simulation;
  const response = await runSimulation(simulation, {});
  if (response.resultType === 'error') {
    throw new Error(`iam-simulate rejected the simulation: ${JSON.stringify(response.errors)}`);
  }
  return response.overallResult as Decision;
}
