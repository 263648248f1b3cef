import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ACTIONS, roleAuthorizer, type Action, type Resource } from '../../src/authz/authorizer.ts';
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
      reason: 'alice may read executions (policy operators, approvers)',
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
    expect(cedar.authorize(carol, 'approve', resource, { channel: 'cli' }).allow).toBe(true);
    expect(cedar.authorize(alice, 'approve', resource, { channel: 'cli' })).toMatchObject({
      allow: false,
      reason: 'alice is in none of the approval groups of the runbook exe-2 runs',
    });
  });

  test('a high-risk run needs its second approver from another group', () => {
    const run = (approvedGroups: string[]): Resource => ({
      kind: 'execution',
      id: 'exe-3',
      requester: 'erin',
      runbook: { name: 'failover-db', risk: 'high', approvalGroups: ['sre', 'dba'] },
      approvals: approvedGroups.length,
      approvedGroups,
    });
    expect(cedar.authorize(alice, 'approve', run([]), { channel: 'cli' }).allow).toBe(true);
    expect(cedar.authorize(alice, 'approve', run(['sre']), { channel: 'cli' }).policies).toEqual([
      'high-risk-two-groups',
    ]);
    expect(cedar.authorize(carol, 'approve', run(['sre']), { channel: 'cli' }).allow).toBe(true);
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
});
