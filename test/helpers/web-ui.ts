/**
 * The reporting UI over real HTTP for tests: the real app (createApp with browser sign-in), a real
 * SQLite audit store that signs checkpoints, the real registry store, the real Cedar policies and
 * the development OpenID provider; Temporal is never reached (its client connects lazily). Plus
 * runs written into the store the way the workflow writes them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { pino } from 'pino';
import { loadCedarAuthorizer } from '../../src/authz/cedar-authorizer.ts';
import { WEB_CLIENT_ID, startDevIdp, type DevIdp } from '../../src/authz/dev-idp.ts';
import { oidcAuthenticator } from '../../src/authz/oidc.ts';
import { DEMO_USERS, tokenAuthenticator, type User } from '../../src/authz/users.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import { createApp } from '../../src/server/app.ts';
import { createAuditTail, type AuditTail } from '../../src/server/audit-tail.ts';
import { createWebSessions } from '../../src/server/web-session.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { loadAuditSigning } from '../../src/store/checkpoints.ts';
import { openDatabase } from '../../src/store/db.ts';
import { createRunbookStore, type RunbookStore } from '../../src/store/runbook-registry.ts';
import { Browser } from './browser.ts';
import { offlineExecutions } from './token-app.ts';

export interface WebUi {
  readonly origin: string;
  readonly audit: AuditStore;
  readonly registry: RunbookStore;
  readonly idp: DevIdp;
  /** A browser signed in as `user` (a demo user), through the provider's real sign-in form. */
  signIn(user: string): Promise<Browser>;
  close(): Promise<void>;
}

/**
 * `storeFile`: serve an existing SQLite log (the bench's) instead of a new one. `users`: the people the
 * development provider signs in (the demo users by default).
 */
export async function startWebUi(
  options: { readonly storeFile?: string; readonly users?: readonly User[] } = {},
): Promise<WebUi> {
  const home = await mkdtemp(path.join(tmpdir(), 'mechanic-web-'));
  const store = { kind: 'sqlite' as const, file: options.storeFile ?? path.join(home, 'audit.db') };
  const signing = await loadAuditSigning(path.join(home, 'audit-key.pem'), { create: true, store });
  const audit = await openAuditStore(store, { signing });
  const registryDb = await openDatabase(store);
  const registry = createRunbookStore(registryDb, { audit });
  const idp = await startDevIdp({ users: options.users ?? DEMO_USERS });
  const authorizer = await loadCedarAuthorizer();
  const tail: AuditTail = createAuditTail(audit, 50);
  const { executions, close: closeExecutions } = offlineExecutions({ registry, audit, authorizer });
  let origin = '';
  const verifier = oidcAuthenticator({
    issuer: idp.issuer,
    audience: WEB_CLIENT_ID,
    jwksUrl: undefined,
    userClaim: 'sub',
    groupsClaim: 'groups',
    algorithms: ['ES256'],
    clockSkewSeconds: 30,
  });
  const webSessions = createWebSessions(
    {
      issuer: idp.issuer,
      clientId: WEB_CLIENT_ID,
      clientSecret: undefined,
      publicUrl: () => origin,
      key: randomBytes(32),
      sessionTtlSeconds: 600,
    },
    { verifier },
  );
  const app = createApp({
    authenticator: tokenAuthenticator({ users: [] }),
    authorizer,
    executions,
    registry,
    runbookStore: registry,
    audit,
    tail,
    log: pino({ level: 'silent' }),
    webSessions,
  });
  const server: ServerType = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    audit,
    registry,
    idp,
    async signIn(user) {
      const browser = new Browser();
      const atProvider = await browser.go(`${origin}/auth/login?next=/ui/runs`);
      const callback = await browser.signIn(atProvider, user, idp.password);
      await browser.request(callback);
      return browser;
    },
    async close() {
      tail.stop();
      // Event streams still open are ended by closing every connection.
      (server as Server).closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeExecutions();
      await registryDb.destroy();
      await audit.close();
      await idp.close();
      await rm(home, { recursive: true, force: true });
    },
  };
}

export interface RunSpec {
  readonly id: string;
  readonly runbook: string;
  readonly operator: string;
  readonly at: string;
  readonly targets: readonly string[];
  readonly approvers?: readonly string[];
  /** Output of the one step on each instance; default "ok". */
  readonly stdout?: string;
  /** Default: completed after the approvals; 'pending' leaves the run awaiting approval. */
  readonly end?: 'completed' | 'failed' | 'rejected' | 'pending';
  /** The runbook's approval rules, as its plan pins them; default none. */
  readonly rules?: { readonly approvalGroups?: readonly string[]; readonly risk?: 'low' | 'medium' | 'high' };
  /** Approvals needed; default one per approver (at least one). */
  readonly required?: number;
  /** For a pending run: approvals already cast, with the approval groups each counted for. */
  readonly pendingVotes?: readonly { readonly approver: string; readonly groups: readonly string[] }[];
  readonly reason?: string;
}

export const PLAN_DIGEST = (id: string) => Buffer.from(id.padEnd(32, '0')).toString('hex').slice(0, 64).padEnd(64, '0');

const plus = (iso: string, seconds: number) => new Date(Date.parse(iso) + seconds * 1000).toISOString();

/** The records of one run, as the workflow appends them: request, votes, credentials, step, end. */
export function runEvents(r: RunSpec): NewAuditEvent[] {
  const planDigest = PLAN_DIGEST(r.id);
  const runbook = {
    name: r.runbook,
    version: 1,
    digest: `sha256:${'d'.repeat(64)}`,
    description: 'A test runbook.',
    ...(r.rules?.approvalGroups ? { approvalGroups: [...r.rules.approvalGroups] } : {}),
    ...(r.rules?.risk ? { risk: r.rules.risk } : {}),
  };
  const plan = {
    executionId: r.id,
    runbook,
    requester: r.operator,
    reason: r.reason ?? 'web test',
    params: { release: 'v1.2.3' },
    targets: r.targets.map((instanceId) => ({ instanceId })),
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    region: 'eu-west-1',
    steps: [{ name: 'work', script: "echo 'v1.2.3'", timeoutSeconds: 60 }],
    onFailure: [],
    approval: { required: r.required ?? Math.max(1, r.approvers?.length ?? 1), expiresAfterSeconds: 3600 },
    budgetSeconds: 900,
    sessionPolicy: '{"Version":"2012-10-17","Statement":[]}',
    createdAt: r.at,
  };
  let n = 0;
  const ev = (type: NewAuditEvent['type'], actor: string, at: string, data: Record<string, unknown>) => ({
    eventId: `${r.id}:${String(n++).padStart(4, '0')}:${type}`,
    executionId: r.id,
    type,
    actor,
    at,
    data,
  });
  const events: NewAuditEvent[] = [
    ev('execution.requested', r.operator, r.at, {
      runbook,
      params: plan.params,
      targets: [...r.targets],
      planDigest,
      reason: plan.reason,
      requester: r.operator,
      plan,
    }),
  ];
  if (r.end === 'pending') {
    (r.pendingVotes ?? []).forEach((v, i) =>
      events.push(ev('approval.granted', v.approver, plus(r.at, 10 + i), { planDigest, groups: [...v.groups] })),
    );
    return events;
  }
  const approvers = r.approvers ?? [];
  approvers.forEach((a, i) =>
    events.push(ev('approval.granted', a, plus(r.at, 10 + i), { planDigest, comment: `fine by ${a}` })),
  );
  if (r.end === 'rejected') {
    events.push(ev('approval.rejected', 'carol', plus(r.at, 20), { planDigest, comment: 'not now' }));
    events.push(ev('execution.rejected', 'system', plus(r.at, 21), {}));
    return events;
  }
  events.push(
    ev('credentials.issued', 'system', plus(r.at, 30), {
      accessKeyId: 'ASIATESTKEY0000001',
      expiration: plus(r.at, 930),
      policyDigest: 'e'.repeat(64),
      roleArn: plan.roleArn,
      reason: 'approved',
    }),
    ev('execution.running', 'system', plus(r.at, 31), { approvedBy: [...approvers] }),
    ev('step.started', 'system', plus(r.at, 32), { step: 'work', index: 0, phase: 'main', commandId: `cmd-${r.id}` }),
  );
  const ok = r.end !== 'failed';
  for (const instanceId of r.targets) {
    events.push(
      ev('step.instance', 'system', plus(r.at, 40), {
        step: 'work',
        index: 0,
        phase: 'main',
        commandId: `cmd-${r.id}`,
        instanceId,
        status: ok ? 'Success' : 'Failed',
        statusDetails: ok ? 'Success' : 'Failed',
        responseCode: ok ? 0 : 3,
        stdout: r.stdout ?? 'ok',
        stderr: '',
        outputSha256: 'f'.repeat(64),
      }),
    );
  }
  events.push(
    ev('step.completed', 'system', plus(r.at, 41), {
      step: 'work',
      index: 0,
      phase: 'main',
      commandId: `cmd-${r.id}`,
      ok,
    }),
    ev(ok ? 'execution.completed' : 'execution.failed', 'system', plus(r.at, 42), {}),
  );
  return events;
}

export async function storeRun(audit: AuditStore, r: RunSpec): Promise<void> {
  for (const e of runEvents(r)) await audit.append(e);
}
