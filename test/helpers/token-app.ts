/**
 * The real API server over real HTTP, for tests of the routes that read the audit log (reports,
 * exports, verify): createApp with bearer tokens and the shipped Cedar policies, on an audit store
 * the test made. The execution service is built as main.ts builds it, but Temporal and AWS are
 * never reached: the Temporal client connects lazily to a port nothing listens on.
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Client, Connection } from '@temporalio/client';
import { pino } from 'pino';
import { createInventory } from '../../src/activities/inventory.ts';
import { createStsClient, ssmClients } from '../../src/activities/aws.ts';
import type { Authorizer } from '../../src/authz/authorizer.ts';
import { loadCedarAuthorizer } from '../../src/authz/cedar-authorizer.ts';
import { tokenAuthenticator, type UsersFile } from '../../src/authz/users.ts';
import { createApp } from '../../src/server/app.ts';
import { createAuditTail } from '../../src/server/audit-tail.ts';
import { createExecutionService, type ExecutionService } from '../../src/server/executions.ts';
import type { AuditStore } from '../../src/store/audit-log.ts';
import { loadRunbookRegistry, type RunbookRegistry } from '../../src/store/runbook-registry.ts';

export interface TokenApp {
  /** The server's base URL. */
  readonly url: string;
  /**
   * The environment of a `mechanic` CLI run against this server from `home`, signed in with `token`
   * when one is given; the caller's own OIDC issuer and token are left out.
   */
  env(home: string, token?: string): NodeJS.ProcessEnv;
  /** Stops the server, the event tail and the Temporal client; the audit store stays the caller's. */
  close(): Promise<void>;
}

/**
 * The execution service as main.ts builds it, for tests whose routes never reach Temporal or AWS:
 * its Temporal client connects lazily to a port nothing listens on, and so do its AWS clients.
 * `close` closes the client's connection.
 */
export function offlineExecutions(deps: {
  readonly registry: RunbookRegistry;
  readonly audit: AuditStore;
  readonly authorizer: Authorizer;
}): { readonly executions: ExecutionService; close(): Promise<void> } {
  const temporal = new Client({ connection: Connection.lazy({ address: '127.0.0.1:9' }) });
  const aws = {
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    baseCredentials: { accessKeyId: 'AKIAUNUSED', secretAccessKey: 'unused' },
  };
  const executions = createExecutionService({
    client: temporal,
    taskQueue: 'unused',
    inventory: createInventory({ sts: createStsClient(aws), ssmFor: ssmClients(aws) }),
    region: 'us-east-1',
    settings: { heartbeatTimeoutSeconds: 60 },
    ...deps,
  });
  return { executions, close: () => temporal.connection.close() };
}

export async function startTokenApp(audit: AuditStore, users: UsersFile): Promise<TokenApp> {
  const tail = createAuditTail(audit, 50);
  const registry = await loadRunbookRegistry('runbooks');
  const authorizer = await loadCedarAuthorizer();
  const offline = offlineExecutions({ registry, audit, authorizer });
  const app = createApp({
    authenticator: tokenAuthenticator(users),
    authorizer,
    executions: offline.executions,
    registry,
    audit,
    tail,
    log: pino({ level: 'silent' }),
  });
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    env(home, token) {
      const env: NodeJS.ProcessEnv = { ...process.env, MECHANIC_HOME: home, MECHANIC_API_URL: url };
      delete env['MECHANIC_OIDC_ISSUER'];
      delete env['MECHANIC_TOKEN'];
      if (token !== undefined) env['MECHANIC_TOKEN'] = token;
      return env;
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      tail.stop();
      await offline.close();
    },
  };
}
