/**
 * Audit events of every type in the vocabulary, shaped as their writers shape them, for the export
 * tests: every type must map to a valid OCSF event and survive every format.
 */
import { AUDIT_EVENT_TYPES, type AuditEventType, type NewAuditEvent } from '../../src/core/audit-events.ts';

const plus = (iso: string, seconds: number) => new Date(Date.parse(iso) + seconds * 1000).toISOString();

/** One run from request to `end`, starting at `at`, on instance i-0abc (and i-0def). */
export function runSample(id: string, at: string, end: AuditEventType = 'execution.completed'): NewAuditEvent[] {
  const runbook = { name: 'deploy-web', version: 3, digest: 'd'.repeat(64), description: 'Deploy the web tier.' };
  const planDigest = 'p'.repeat(64);
  const step = { step: 'restart', index: 0, phase: 'main' as const };
  let n = 0;
  const ev = (type: AuditEventType, actor: string, seconds: number, data: Record<string, unknown>): NewAuditEvent => ({
    eventId: `${id}:${String(n++).padStart(4, '0')}:${type}`,
    executionId: id,
    type,
    actor,
    at: plus(at, seconds),
    data,
  });
  const events = [
    ev('execution.requested', 'alice', 0, {
      runbook,
      params: { release: 'v1.2.3', dryRun: false },
      targets: ['i-0abc', 'i-0def'],
      planDigest,
      reason: 'deploy =HYPERLINK("x") "quoted", with commas',
      requester: 'alice',
      plan: {
        executionId: id,
        runbook,
        requester: 'alice',
        reason: 'deploy',
        targets: [{ instanceId: 'i-0abc' }, { instanceId: 'i-0def' }],
        steps: [{ name: 'restart' }],
        onFailure: [],
        approval: { required: 1, expiresAfterSeconds: 3600 },
        createdAt: at,
      },
      policies: ['operators-launch'],
    }),
    ev('approval.refused', 'alice', 5, { code: 'APPROVAL_SELF', reason: 'alice requested this run', channel: 'cli' }),
    ev('approval.granted', 'carol', 30, { planDigest, comment: 'looks right', groups: ['approver'] }),
  ];
  if (end === 'execution.rejected') {
    events.push(ev('approval.rejected', 'dave', 31, { planDigest, comment: 'not today' }));
    events.push(ev(end, 'mechanic', 31, { reason: 'rejected by dave' }));
    return events;
  }
  if (end === 'execution.expired') {
    events.push(ev(end, 'mechanic', 3600, { reason: 'no approval within 3600 s' }));
    return events;
  }
  events.push(
    ev('credentials.issued', 'mechanic', 31, {
      accessKeyId: 'ASIAEXAMPLE00000001',
      expiration: plus(at, 931),
      policyDigest: 'e'.repeat(64),
      roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
      reason: 'approved',
    }),
    ev('execution.running', 'mechanic', 31, { approvedBy: ['carol'] }),
    ev('step.started', 'mechanic', 32, { ...step, commandId: 'cmd-1' }),
    ev('step.instance', 'mechanic', 40, {
      ...step,
      commandId: 'cmd-1',
      instanceId: 'i-0abc',
      status: end === 'execution.failed' ? 'Failed' : 'Success',
      statusDetails: end === 'execution.failed' ? 'Failed' : 'Success',
      responseCode: end === 'execution.failed' ? 1 : 0,
      stdout: '=cmd|"/c calc"!A1\n+1\n-2\n@SUM(A1)\n\u001b[31mred\u001b[0m <script>alert(1)</script> \u202e',
      stderr: '',
      outputSha256: 'f'.repeat(64),
    }),
    ev('step.completed', 'mechanic', 41, {
      ...step,
      commandId: 'cmd-1',
      ok: end !== 'execution.failed',
      instances: [{ instanceId: 'i-0abc', status: 'Success', responseCode: 0 }],
    }),
  );
  // Steps skipped by their condition, where the vocabulary has them.
  const skipped: string = 'step.skipped';
  if ((AUDIT_EVENT_TYPES as readonly string[]).includes(skipped)) {
    events.push(
      ev(skipped as AuditEventType, 'mechanic', 41, {
        step: 'notify',
        index: 1,
        phase: 'main',
        reason: 'notify is false',
      }),
    );
  }
  events.push(
    end === 'execution.cancelled'
      ? ev(end, 'bob', 42, { reason: 'wrong window', policies: ['operators-cancel-own'] })
      : ev(end, 'mechanic', 42, end === 'execution.failed' ? { reason: 'step restart failed' } : {}),
  );
  return events;
}

/** Events with no execution: refusals, the registry, the policies. */
export function looseSamples(at: string, unique: string): NewAuditEvent[] {
  return [
    {
      eventId: `none:access.denied:${unique}`,
      executionId: null,
      type: 'access.denied',
      actor: 'mallory',
      at,
      data: {
        action: 'exportAudit',
        path: '/api/audit/export',
        channel: 'cli',
        reason: 'mallory (operator) may not export the audit log',
        policies: [],
      },
    },
    {
      eventId: `none:request.refused:${unique}`,
      executionId: null,
      type: 'request.refused',
      actor: 'anonymous',
      at: plus(at, 1),
      data: {
        method: 'GET',
        path: '/api/audit',
        channel: 'api',
        status: 429,
        code: 'RATE_LIMITED',
        reason: 'too many requests',
        address: '127.0.0.1',
        count: 3,
        since: at,
        until: plus(at, 1),
      },
    },
    {
      eventId: `runbook.published:deploy-web:3:${unique}`,
      executionId: null,
      type: 'runbook.published',
      actor: 'frank',
      at: plus(at, 2),
      data: {
        name: 'deploy-web',
        version: 3,
        digest: 'd'.repeat(64),
        source: { kind: 'file', path: 'runbooks/deploy-web.yaml' },
      },
    },
    {
      eventId: `runbook.reviewed:deploy-web:3:${unique}`,
      executionId: null,
      type: 'runbook.reviewed',
      actor: 'grace',
      at: plus(at, 3),
      data: { name: 'deploy-web', version: 3, digest: 'd'.repeat(64), decision: 'approve', comment: 'ok' },
    },
    {
      eventId: `runbook.deprecated:deploy-web:3:${unique}`,
      executionId: null,
      type: 'runbook.deprecated',
      actor: 'frank',
      at: plus(at, 4),
      data: { name: 'deploy-web', version: 3, digest: 'd'.repeat(64), reason: 'superseded' },
    },
    {
      eventId: `policy.reloaded:${unique}`,
      executionId: null,
      type: 'policy.reloaded',
      actor: 'mechanic',
      at: plus(at, 5),
      data: { file: 'policies.cedar', digest: 'c'.repeat(64), applied: true },
    },
  ];
}

/** Every type of the vocabulary at least once: five runs (one per way to end) and the loose events. */
export function everyTypeSample(prefix: string, at: string): NewAuditEvent[] {
  const ends: AuditEventType[] = [
    'execution.completed',
    'execution.failed',
    'execution.rejected',
    'execution.expired',
    'execution.cancelled',
  ];
  return [
    ...ends.flatMap((end, i) => runSample(`${prefix}-${i}`, plus(at, i * 7200), end)),
    ...looseSamples(plus(at, 40_000), prefix),
  ];
}
