import { createInventory } from '../../src/activities/inventory.ts';
import { createStsClient, ssmClients } from '../../src/activities/aws.ts';
import { loadCedarAuthorizer } from '../../src/authz/cedar-authorizer.ts';
import {
  createExecutionService,
  type ExecutionService,
  type ExecutionServiceDeps,
} from '../../src/server/executions.ts';
import { loadRunbookRegistry } from '../../src/store/runbook-registry.ts';

/** An AWS endpoint nothing listens on: the service's tests vote, cancel and read, and never plan. */
export const NO_AWS = { region: 'us-east-1', endpoint: 'http://127.0.0.1:1' } as const;

/**
 * The real execution service over a test's own Temporal client and audit store, with the example
 * runbooks, the default Cedar policies (unless `authorizer` is given) and AWS out of reach.
 */
export async function serviceWithoutAws(
  deps: Pick<ExecutionServiceDeps, 'client' | 'taskQueue' | 'audit'> & Partial<ExecutionServiceDeps>,
): Promise<ExecutionService> {
  return createExecutionService({
    registry: await loadRunbookRegistry('runbooks'),
    inventory: createInventory({ sts: createStsClient(NO_AWS), ssmFor: ssmClients(NO_AWS) }),
    region: NO_AWS.region,
    settings: { heartbeatTimeoutSeconds: 60 },
    authorizer: deps.authorizer ?? (await loadCedarAuthorizer()),
    ...deps,
  });
}
