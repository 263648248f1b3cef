import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ACTIONS, loggedAuthorizer, roleAuthorizer, type Action, type Resource } from '../../src/authz/authorizer.ts';
import {
  DEFAULT_POLICY_FILE,
  SCHEMA_FILE,
  createCedarAuthorizer,
  validatePolicies,
} from '../../src/authz/cedar-authorizer.ts';
import { readPolicyCases, runPolicyCases } from '../../src/authz/policy-cases.ts';
import { RoleSchema, type Role, type User } from '../../src/authz/users.ts';

const schema = readFileSync(SCHEMA_FILE, 'utf8');
const defaults = readFileSync(DEFAULT_POLICY_FILE, 'utf8');
const cedar = createCedarAuthorizer({ policies: defaults, source: 'policies.cedar', schema });
const table = roleAuthorizer();
const CASES_FILE = new URL('../../src/authz/cedar/cases.yaml', import.meta.url).pathname;

/** Every non-empty set of roles. */
function roleSets(): Role[][] {
  const roles = RoleSchema.options;
  const sets: Role[][] = [];
  for (let mask = 1; mask < 1 << roles.length; mask++) sets.push(roles.filter((_, i) => mask & (1 << i)));
  return sets;
}

/** The resources each action is asked about by the routes (and by the actions still to come). */
function resourcesFor(action: Action, self: string): Resource[] {
  const executions: Resource[] = [
    { kind: 'execution', id: 'exe-1' },
    { kind: 'execution', id: 'exe-1', requester: 'someone' },
  ];
  switch (action) {
    case 'readRunbook':
    case 'launch':
    case 'publish':
    case 'review':
      return [{ kind: 'catalog' }, { kind: 'runbook', name: 'deploy-web' }];
    case 'readRun':
      return [{ kind: 'catalog' }, ...executions, { kind: 'execution', id: 'exe-1', requester: self }];
    case 'approve':
    case 'reject':
      return executions;
    case 'cancel':
      return [...executions, { kind: 'execution', id: 'exe-1', requester: self }];
    case 'readAudit':
    case 'exportAudit':
      return [{ kind: 'audit' }];
    case 'administer':
      return [{ kind: 'catalog' }, { kind: 'audit' }];
  }
}

describe('the default Cedar policies reproduce the role table', () => {
  const rows: [string, User, Action, Resource][] = [];
  for (const roles of roleSets()) {
    const user: User = { id: 'pat', displayName: 'Pat', roles };
    for (const action of ACTIONS) {
      for (const resource of resourcesFor(action, user.id)) {
        rows.push([`${roles.join('+')} ${action} ${JSON.stringify(resource)}`, user, action, resource]);
      }
    }
  }

  test(`on all ${rows.length} combinations of roles, actions and resources`, () => {
    const disagreements: string[] = [];
    for (const [name, user, action, resource] of rows) {
      const a = table.authorize(user, action, resource, { channel: 'cli' });
      const b = cedar.authorize(user, action, resource, { channel: 'cli' });
      if (a.allow !== b.allow || (!a.allow && a.reason !== b.reason)) {
        disagreements.push(
          `${name}: role table ${a.allow ? 'allows' : `denies (${a.reason})`}, Cedar ${b.allow ? 'allows' : `denies (${b.reason})`}`,
        );
      }
    }
    expect(disagreements).toEqual([]);
    expect(rows.length).toBeGreaterThan(500);
  }, 180_000);

  test('an allow records the permits that decided it', () => {
    const d = cedar.authorize(
      { id: 'alice', displayName: 'A', roles: ['operator', 'approver'] },
      'readRun',
      { kind: 'catalog' },
      { channel: 'tui' },
    );
    expect(d).toEqual({
      allow: true,
      // Cedar names the permits in no fixed order.
      reason: expect.stringMatching(
        /^alice may read executions \(policy (operators, approvers|approvers, operators)\)$/,
      ),
      policies: expect.arrayContaining(['operators', 'approvers']),
    });
  });

  test('a default deny names the role it needs, as the role table did', () => {
    const d = cedar.authorize(
      { id: 'dave', displayName: 'D', roles: ['auditor'] },
      'approve',
      { kind: 'execution', id: 'exe-1' },
      { channel: 'cli' },
    );
    expect(d).toEqual({
      allow: false,
      reason: 'dave (auditor) may not approve or reject executions; that needs the approver role',
      policies: [],
    });
  });

  test("an operator cancelling someone else's run reads the condition they did not meet", () => {
    const d = cedar.authorize(
      { id: 'erin', displayName: 'E', roles: ['operator'] },
      'cancel',
      { kind: 'execution', id: 'exe-9', requester: 'alice' },
      { channel: 'cli' },
    );
    expect(d.reason).toBe('erin may only cancel their own executions; exe-9 was requested by alice');
  });
});

describe('what the policies add', () => {
  const alice: User = { id: 'alice', displayName: 'A', roles: ['operator', 'approver'], groups: ['sre'] };
  const carol: User = { id: 'carol', displayName: 'C', roles: ['approver'], groups: ['dba'] };

  test('self-approval is forbidden, by the policy that says so', () => {
    const d = cedar.authorize(
      alice,
      'approve',
      { kind: 'execution', id: 'exe-1', requester: 'alice' },
      { channel: 'cli' },
    );
    expect(d).toEqual({
      allow: false,
      reason: 'alice requested exe-1 and may not approve it; another approver must',
      policies: ['no-self-approval'],
    });
  });

  test("approvers come from the runbook's approval groups", () => {
    const resource: Resource = {
      kind: 'execution',
      id: 'exe-2',
      requester: 'erin',
      runbook: { name: 'migrate-db', approvalGroups: ['dba'] },
    };
    expect(cedar.authorize(carol, 'approve', resource, { channel: 'cli' })).toEqual({
      allow: true,
      reason: 'carol may approve or reject executions (policy approvers-vote)',
      policies: ['approvers-vote'],
    });
    expect(cedar.authorize(alice, 'approve', resource, { channel: 'cli' })).toEqual({
      allow: false,
      reason: 'alice is in none of the approval groups of the runbook exe-2 runs; a member of one of them must vote',
      policies: ['approval-groups'],
    });
  });

  test('a high-risk run needs its completing approver from another group', () => {
    const run = (approvers: { approver: string; groups: string[] }[], approvalsRequired = 2): Resource => ({
      kind: 'execution',
      id: 'exe-3',
      requester: 'erin',
      runbook: { name: 'failover-db', risk: 'high', approvalGroups: ['sre', 'dba'] },
      approvers,
      approvalsRequired,
    });
    const bob = { approver: 'bob', groups: ['sre'] };
    expect(cedar.authorize(alice, 'approve', run([]), { channel: 'cli' }).allow).toBe(true);
    expect(cedar.authorize(alice, 'approve', run([bob]), { channel: 'cli' })).toEqual({
      allow: false,
      reason:
        "exe-3 runs a high-risk runbook and alice's approval would complete it with every approval from one group; a member of another approval group must approve",
      policies: ['high-risk-two-groups'],
    });
    expect(cedar.authorize(carol, 'approve', run([bob]), { channel: 'cli' }).allow).toBe(true);
    // With three approvals needed, a second from sre still leaves room for dba's.
    expect(cedar.authorize(alice, 'approve', run([bob], 3), { channel: 'cli' }).allow).toBe(true);
    // A person in both groups brings the second group to a run approved by sre.
    const both: User = { ...alice, id: 'pat', groups: ['sre', 'dba'] };
    expect(cedar.authorize(both, 'approve', run([bob]), { channel: 'cli' }).allow).toBe(true);
  });

  test('a medium-risk run does not ask for a second group', () => {
    const resource: Resource = {
      kind: 'execution',
      id: 'exe-4',
      requester: 'erin',
      runbook: { name: 'restart-web', risk: 'medium', approvalGroups: ['sre', 'dba'] },
      approvers: [{ approver: 'bob', groups: ['sre'] }],
      approvalsRequired: 2,
    };
    expect(cedar.authorize(alice, 'approve', resource, { channel: 'cli' }).allow).toBe(true);
  });

  test('the policies see the channel and the time, so an admin can write rules on them', () => {
    const strict = createCedarAuthorizer({
      policies: `${defaults}
@id("no-approvals-from-slack-for-high-risk")
forbid (principal, action == Action::"approve", resource is Execution)
when { context has risk && context.risk == "high" && context.channel == "slack" };
@id("no-launch-before-2026")
forbid (principal, action == Action::"launch", resource)
when { context.time < 1767225600 };`,
      source: 'strict.cedar',
      schema,
    });
    const run: Resource = {
      kind: 'execution',
      id: 'exe-3',
      requester: 'erin',
      runbook: { name: 'failover-db', risk: 'high', approvalGroups: ['sre', 'dba'] },
    };
    // The admin's rule decides, beside the default one-click rule of Slack (slack-one-click-high-risk).
    expect([...strict.authorize(carol, 'approve', run, { channel: 'slack' }).policies].sort()).toEqual([
      'no-approvals-from-slack-for-high-risk',
      'slack-one-click-high-risk',
    ]);
    expect(strict.authorize(carol, 'approve', run, { channel: 'tui' }).allow).toBe(true);
    const runbook: Resource = { kind: 'runbook', name: 'deploy-web' };
    expect(
      strict.authorize(alice, 'launch', runbook, { channel: 'cli', time: new Date('2025-12-31T23:00:00Z') }),
    ).toMatchObject({ allow: false, policies: ['no-launch-before-2026'] });
    expect(
      strict.authorize(alice, 'launch', runbook, { channel: 'cli', time: new Date('2026-01-01T01:00:00Z') }).allow,
    ).toBe(true);
  });

  test("a launch sees the runbook's owners, risk, environment, tags and approval groups", () => {
    const prodOwners = createCedarAuthorizer({
      policies: `${defaults}
@id("prod-by-owners")
forbid (principal, action == Action::"launch", resource is Runbook)
when { resource.environment == "production" && resource.risk != "low" && !resource.tags.contains("self-service") && !(principal in resource.owners) && !(principal in resource.approvalGroups) };`,
      source: 'prod.cedar',
      schema,
    });
    const rb = (extra: Partial<Extract<Resource, { kind: 'runbook' }>>): Resource => ({
      kind: 'runbook',
      name: 'deploy-web',
      environment: 'production',
      risk: 'medium',
      owners: ['carol'],
      approvalGroups: ['dba'],
      ...extra,
    });
    expect(prodOwners.authorize(alice, 'launch', rb({}), { channel: 'cli' }).policies).toEqual(['prod-by-owners']);
    expect(prodOwners.authorize(alice, 'launch', rb({ owners: ['alice'] }), { channel: 'cli' }).allow).toBe(true);
    expect(prodOwners.authorize(alice, 'launch', rb({ approvalGroups: ['sre'] }), { channel: 'cli' }).allow).toBe(true);
    expect(prodOwners.authorize(alice, 'launch', rb({ risk: 'low' }), { channel: 'cli' }).allow).toBe(true);
    expect(prodOwners.authorize(alice, 'launch', rb({ environment: 'staging' }), { channel: 'cli' }).allow).toBe(true);
    expect(prodOwners.authorize(alice, 'launch', rb({ tags: ['self-service'] }), { channel: 'cli' }).allow).toBe(true);
  });

  test("a vote sees who approved so far: a policy can refuse a second approval by the requester's deputy", () => {
    const deputies = createCedarAuthorizer({
      policies: `${defaults}
@id("not-after-dave")
forbid (principal, action == Action::"approve", resource is Execution)
when { resource.approvers.contains(User::"dave") && resource.approvedGroups.contains(Group::"sre") };`,
      source: 'deputies.cedar',
      schema,
    });
    const run = (approvers: { approver: string; groups: string[] }[]): Resource => ({
      kind: 'execution',
      id: 'exe-6',
      requester: 'erin',
      runbook: { name: 'restart-web', approvalGroups: ['sre', 'dba'] },
      approvers,
      approvalsRequired: 3,
    });
    expect(
      deputies.authorize(carol, 'approve', run([{ approver: 'dave', groups: ['sre'] }]), { channel: 'cli' }),
    ).toMatchObject({ allow: false, policies: ['not-after-dave'] });
    expect(
      deputies.authorize(carol, 'approve', run([{ approver: 'bob', groups: ['sre'] }]), { channel: 'cli' }).allow,
    ).toBe(true);
  });
});

describe('policy files that do not hold are refused', () => {
  test('the shipped policies validate against the schema', () => {
    expect(validatePolicies(defaults, 'policies.cedar', schema)).toEqual([]);
  });

  test.each([
    [
      'a type error',
      defaults.replace('resource.runbook.risk == "high"', 'resource.runbook.risk == 3'),
      /policy "high-risk-two-groups"/,
    ],
    ['an unknown action', defaults.replace('Action::"administer"', 'Action::"adminster"'), /adminster/],
    [
      'an unknown attribute',
      defaults.replace('resource.owners.contains', 'resource.owner.contains'),
      /policy "no-self-review"/,
    ],
    ['a policy without an id', `${defaults}\npermit (principal, action, resource);`, /has no @id/],
    [
      'an id used twice',
      `${defaults}\n@id("operators") permit (principal, action, resource);`,
      /"operators" is used twice/,
    ],
    ['a syntax error', defaults.replace('forbid (principal', 'forbid (principle'), /does not parse/],
  ])('%s', (_name, text, problem) => {
    expect(validatePolicies(text, 'broken.cedar', schema).join('\n')).toMatch(problem);
    expect(() => createCedarAuthorizer({ policies: text, source: 'broken.cedar', schema })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(problem) }),
    );
  });
});

describe('policy cases', () => {
  test('the shipped cases pass on the default policies', async () => {
    const results = runPolicyCases(cedar, await readPolicyCases(CASES_FILE));
    expect(results.filter((r) => !r.passed)).toEqual([]);
    expect(results.length).toBeGreaterThan(20);
  });

  test('a policy broken on purpose fails the cases that cover it, by name', async () => {
    // Operators may now cancel anyone's run: the own-execution condition is gone.
    const broken = defaults.replace('when { resource has requester && resource.requester == principal };', ';');
    expect(broken).not.toBe(defaults);
    const authorizer = createCedarAuthorizer({ policies: broken, source: 'broken.cedar', schema });
    const failed = runPolicyCases(authorizer, await readPolicyCases(CASES_FILE)).filter((r) => !r.passed);
    expect(failed).toEqual([
      {
        name: "an operator does not cancel someone else's execution",
        passed: false,
        problem:
          'expected deny, got allow by operators-cancel-own: erin may cancel executions (policy operators-cancel-own)',
      },
    ]);
  });

  test.each([
    [
      'approval groups no longer bind',
      ['!(principal in resource.runbook.approvalGroups)', 'false'],
      [
        "an approver outside the runbook's approval groups does not approve",
        "an approver outside the runbook's approval groups does not reject either",
      ],
    ],
    [
      'a high-risk run takes two approvals of one group',
      ['context.approvingGroups < 2', 'context.approvingGroups < 1'],
      ["a high-risk run's completing approval from the same group is refused"],
    ],
    [
      'the high-risk rule fires before the count is complete',
      ['resource.approvals + 1 >= resource.approvalsRequired', 'true'],
      [
        'the first approval of a high-risk run',
        'a high-risk run that needs three approvals takes a second from the same group',
      ],
    ],
  ])('breaking the rule that %s fails its cases by name', async (_rule, [from, to], names) => {
    const broken = defaults.replace(from!, to!);
    expect(broken).not.toBe(defaults);
    const authorizer = createCedarAuthorizer({ policies: broken, source: 'broken.cedar', schema });
    const failed = runPolicyCases(authorizer, await readPolicyCases(CASES_FILE)).filter((r) => !r.passed);
    expect(failed.map((r) => r.name)).toEqual(names);
  });
});

describe('every decision is in the structured log', () => {
  test('reads and denials alike, with the policy ids that decided them', () => {
    const lines: { fields: object; message: string }[] = [];
    const logged = loggedAuthorizer(cedar, { info: (fields, message) => lines.push({ fields, message }) });
    const dave: User = { id: 'dave', displayName: 'D', roles: ['auditor'], groups: ['audit'] };
    const read = logged.authorize(dave, 'readAudit', { kind: 'audit' }, { channel: 'web' });
    const denied = logged.authorize(
      dave,
      'cancel',
      { kind: 'execution', id: 'mx-1', requester: 'alice' },
      {
        channel: 'cli',
      },
    );
    expect(read).toEqual(cedar.authorize(dave, 'readAudit', { kind: 'audit' }, { channel: 'web' }));
    expect(denied.allow).toBe(false);
    expect(lines).toEqual([
      {
        message: 'authorization decision',
        fields: {
          authz: {
            principal: 'dave',
            action: 'readAudit',
            resource: 'audit',
            channel: 'web',
            decision: 'allow',
            policies: ['auditors'],
          },
        },
      },
      {
        message: 'authorization decision',
        fields: {
          authz: {
            principal: 'dave',
            action: 'cancel',
            resource: 'execution:mx-1',
            channel: 'cli',
            decision: 'deny',
            policies: [],
          },
        },
      },
    ]);
  });
});
