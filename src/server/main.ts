import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { exitIfStoppedWhileStarting } from '../embedded/part.ts';
import { openSigningAuditStore } from '../store/audit-log.ts';
import { createRunbookStore } from '../store/runbook-registry.ts';
import { openDatabase } from '../store/db.ts';
import { readUsersFile, tokenAuthenticator } from '../authz/users.ts';
import { combinedAuthenticator, oidcAuthenticator } from '../authz/oidc.ts';
import { connectClient, dataConverterFrom } from '../temporal/connect.ts';
import { createInventory } from '../activities/inventory.ts';
import { createStsClient, ssmClients } from '../activities/aws.ts';
import { createExecutionService } from './executions.ts';
import { createApp } from './app.ts';
import { createAuditTail } from './audit-tail.ts';
import { sweepRunsEndedInTemporal } from './ended-runs.ts';
import { createDenialRecorder } from './denials.ts';
import { DEFAULT_POLICY_FILE, loadCedarAuthorizer } from '../authz/cedar-authorizer.ts';
import { reloadableAuthorizer } from '../authz/reload.ts';
import { loggedAuthorizer } from '../authz/authorizer.ts';
import { UserError } from '../core/errors.ts';
import { auditEvent } from '../core/audit-events.ts';
import { randomUUID } from 'node:crypto';
import { webSessionsFromConfig } from './web-session.ts';
import { startSlack } from '../slack/index.ts';
import type { User } from '../authz/users.ts';
import { EncryptionCodec, parseCodecKeys } from '../temporal/codec.ts';

/** Who a refused browser sign-in is recorded as: nobody is signed in yet. */
const WEB_SIGN_IN: User = { id: 'anonymous', displayName: 'browser sign-in', roles: [] };

/** The API server's process: `mechanic server` runs this until SIGINT/SIGTERM. */
export async function runServer(): Promise<number> {
  const config = loadConfig();
  const log = createLogger('server', config.logLevel);
  const { stopped, started } = exitIfStoppedWhileStarting(config.supervised, () => log.info('stopped while starting'));
  // Policies first: a server must not start with policies that do not validate.
  // Every decision goes to the structured log; denials and allowed changes also to the audit log.
  const policyFile = config.authz.policyFile ?? DEFAULT_POLICY_FILE;
  const policies = await reloadableAuthorizer(policyFile, loadCedarAuthorizer);
  const authorizer = loggedAuthorizer(policies, log);
  // Before anything is written: a server refused for its codec keys must not leave an audit store behind.
  dataConverterFrom(config.temporal);
  // Users-file tokens (service accounts, demo users) always; OIDC JWTs when an issuer is configured.
  const authenticator = combinedAuthenticator(
    tokenAuthenticator(await readUsersFile(config.api.usersFile)),
    config.authz.oidc ? oidcAuthenticator(config.authz.oidc) : undefined,
  );
  const audit = await openSigningAuditStore(config, {
    onCheckpointError: (err) => log.error({ err }, 'could not sign a checkpoint of the audit log'),
  });
  // The runbook registry: only reviewed versions are launched (src/store/runbook-registry.ts).
  const registryDb = await openDatabase(config.store);
  const registry = createRunbookStore(registryDb, { audit });
  if (config.registrySeed) await registry.seed(config.runbooksDir, config.registrySeed, log);
  const client = await connectClient(config.temporal);
  const aws = { region: config.aws.region, endpoint: config.aws.endpoint, baseCredentials: config.aws.baseCredentials };
  const inventory = createInventory({ sts: createStsClient(aws), ssmFor: ssmClients(aws) });
  // One caller's repeated refusals fold into counted records; closed before the audit store, so no count is lost.
  const denials = createDenialRecorder({
    audit,
    windowMs: config.limits.denialWindowSeconds * 1000,
    onError: (err, count) => log.error({ err, count }, 'could not record counted refusals'),
  });
  const executions = createExecutionService({
    client,
    taskQueue: config.temporal.taskQueue,
    registry,
    inventory,
    audit,
    region: config.aws.region,
    settings: { heartbeatTimeoutSeconds: config.ssm.heartbeatTimeoutSeconds },
    authorizer,
    denials,
  });
  const tail = createAuditTail(audit);
  // SIGHUP re-reads the policies; a file that does not validate is refused and the old ones stay.
  // Either way it is on the record, since a policy change changes who may do what.
  const onReload = () => {
    void policies.reload().then(async (outcome) => {
      if (outcome.applied) log.info({ file: policyFile }, 'policies reloaded');
      else log.error({ file: policyFile, reason: outcome.reason }, 'policies not reloaded; the ones in force stay');
      await audit
        .append(
          auditEvent('policy.reloaded', {
            eventId: `policy:${outcome.digest}:${randomUUID()}`,
            executionId: null,
            actor: 'system',
            at: new Date().toISOString(),
            data: {
              file: policyFile,
              digest: outcome.digest,
              applied: outcome.applied,
              ...(outcome.reason === undefined ? {} : { reason: outcome.reason }),
            },
          }),
        )
        .catch((err: unknown) => log.error({ err }, 'could not record a policy reload'));
    });
  };
  process.on('SIGHUP', onReload);
  let boundUrl = '';
  // Browser sign-in (authorization code + PKCE) when a web client is configured; refusals are on the record.
  const webSessions = await webSessionsFromConfig(config.authz, {
    boundUrl: () => boundUrl,
    onRefusal: (r) =>
      executions.auditRefusal(WEB_SIGN_IN, null, 'request.refused', {
        code: 'UNAUTHENTICATED',
        reason: r.reason,
        path: `/auth/${r.step}`,
        channel: 'web',
      }),
  });
  // Slack approvals when a bot token is configured: the /slack routes and the message follower.
  const slackSettings = config.slack;
  const slack = slackSettings
    ? await startSlack(slackSettings, {
        audit,
        waitBeyond: (seq, signal) => tail.waitBeyond(seq, signal),
        authorizer,
        executions,
        log,
        sessions: webSessions,
        publicUrl: () => slackSettings.publicUrl ?? boundUrl,
      })
    : undefined;
  const app = createApp({
    authenticator,
    authorizer,
    executions,
    registry,
    runbookStore: registry,
    audit,
    tail,
    log,
    limits: config.limits,
    reports: config.reports,
    denials,
    // The worker's codec, for Temporal's Web UI and CLI (dataConverterFrom above refused a server without keys).
    codec: {
      codec: new EncryptionCodec(parseCodecKeys(config.temporal.codecKeys ?? '')),
      namespace: config.temporal.namespace,
      allowedOrigins: config.temporal.uiOrigins,
    },
    ...(webSessions ? { webSessions } : {}),
    ...(slack ? { slack: slack.routes } : {}),
  });
  const server = serve({ fetch: app.fetch, hostname: config.api.host, port: config.api.port });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE' || e.code === 'EACCES'
          ? new UserError(
              'CONFIG_INVALID',
              `the API cannot listen on ${config.api.host}:${config.api.port} (${e.code === 'EADDRINUSE' ? 'the port is in use' : 'permission denied'}); set MECHANIC_API_PORT to a free port`,
            )
          : e,
      ),
    );
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.api.host}:${port}`;
  boundUrl = url;
  // Runs Temporal ended without their end on the record get it, at start and then at an interval.
  const endedRuns = sweepRunsEndedInTemporal({ client, audit, log }, config.endedRunsSweepSeconds * 1000);
  started();
  log.info({ url, runbooks: (await registry.list()).length }, 'ready');
  await stopped;
  process.off('SIGHUP', onReload);
  await slack?.stop();
  // Live event streams end first, so closing the server does not wait for their clients.
  tail.stop();
  await endedRuns.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await client.connection.close();
  await denials.close();
  await registryDb.destroy();
  await audit.close();
  log.info('stopped');
  return 0;
}
