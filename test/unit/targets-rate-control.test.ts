import { describe, expect, test } from 'vitest';
import { buildPlan, queuedSeconds, type PlanInput } from '../../src/core/plan.ts';
import { RunbookSchema, parseRunbook, type Runbook } from '../../src/core/runbook.ts';
import { buildSessionPolicy } from '../../src/core/session-policy.ts';
import { formatPlanDetail } from '../../cli/format.ts';
import { planLines } from '../../cli/tui/plan-lines.ts';
import { PlanSchema } from '../../src/api/schemas.ts';
import {
  lookupsFor,
  rateControlOf,
  rateControlText,
  rateLimitCount,
  selectTargets,
  type FleetInstance,
} from '../../src/core/targets.ts';

/**
 * Issue 10's targets (the Name tag, a parameter naming instances inside the author's bound) and
 * rate control (maxConcurrency / maxErrors, runbook-wide or per step), from the schema to the plan.
 */

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

const WEB_1 = 'i-0aaaaaaaaaaaaaaa1';
const WEB_2 = 'i-0aaaaaaaaaaaaaaa2';
const DB_1 = 'i-0bbbbbbbbbbbbbbb1';

/** As the inventory returns them: `name` is the Name tag, never the host name. */
const fleet: readonly FleetInstance[] = [
  { id: WEB_1, name: 'web-1', tags: {}, online: true },
  { id: WEB_2, name: 'web-2', tags: {}, online: true },
  { id: DB_1, name: 'db-1', tags: {}, online: true },
];

function runbook(overrides: Record<string, unknown> = {}): Runbook {
  return parseRunbook({
    name: 'restart-web',
    version: 1,
    description: 'Restart the web service.',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    targets: { tags: { Role: 'web' } },
    steps: [{ name: 'restart', script: 'echo restart', timeoutSeconds: 120 }],
    ...overrides,
  });
}

const problems = (overrides: Record<string, unknown>) => {
  const r = RunbookSchema.safeParse({
    name: 'restart-web',
    version: 1,
    description: 'Restart the web service.',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    targets: { tags: { Role: 'web' } },
    steps: [{ name: 'restart', script: 'echo restart' }],
    ...overrides,
  });
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('the schema', () => {
  test.each([
    [{ names: ['web-1', 'web 2'] }],
    [{ fromParameter: 'hosts' }],
    [{ fromParameter: 'hosts', within: { tags: { Role: 'web' } } }],
    [{ fromParameter: 'hosts', within: { names: ['web-1'] } }],
    [{ fromParameter: 'hosts', within: { instanceIds: [WEB_1] } }],
  ])('accepts targets %j', (targets) => {
    expect(problems({ targets, parameters: { hosts: { type: 'string' } } })).toEqual([]);
  });

  test('a fromParameter may name an enum parameter (the author lists the names)', () => {
    const parameters = { hosts: { type: 'enum', values: ['web-1', 'web-2'] } };
    expect(problems({ targets: { fromParameter: 'hosts' }, parameters })).toEqual([]);
  });

  test.each([
    [1, 1],
    ['1%', '1%'],
    ['100%', '100%'],
    [10_000, 10_000],
  ])('maxConcurrency %j is accepted', (value, parsed) => {
    expect(runbook({ maxConcurrency: value }).maxConcurrency).toBe(parsed);
  });

  test.each([[0], ['0%'], ['101%'], ['150%'], ['5'], [1.5], [true], ['25 %']])('maxConcurrency %j is refused', (v) => {
    expect(problems({ maxConcurrency: v })).toEqual([
      expect.stringMatching(/^maxConcurrency: must be a whole number of at least 1 or a percentage from 1% to 100%/),
    ]);
  });

  test.each([[0], ['0%'], ['100%'], [3]])('maxErrors %j is accepted on a step', (value) => {
    expect(runbook({ steps: [{ name: 'restart', script: 'echo', maxErrors: value }] }).steps[0]?.maxErrors).toBe(value);
  });

  test.each([[-1], ['101%'], ['1'], [0.5]])('maxErrors %j is refused', (v) => {
    expect(problems({ maxErrors: v })).toHaveLength(1);
    expect(problems({ maxErrors: v })[0]).toMatch(/^maxErrors: /);
  });

  test('maxErrors above the instances a runbook lists could never stop a step', () => {
    expect(problems({ targets: { names: ['web-1', 'web-2'] }, maxErrors: 3 })).toEqual([
      'maxErrors: maxErrors is 3, more than the 2 instances this runbook targets, so no failure could ever stop a step; lower it, or write "100%" to never stop (rule max-errors-above-targets)',
    ]);
    expect(
      problems({ targets: { instanceIds: [WEB_1] }, steps: [{ name: 'a', script: 'echo', maxErrors: 2 }] }),
    ).toEqual([expect.stringMatching(/^steps\.0\.maxErrors: maxErrors is 2, more than the 1 instance this/)]);
    // Equal is allowed (every instance may fail), and so is any number on tags: their count is unknown.
    expect(problems({ targets: { names: ['web-1', 'web-2'] }, maxErrors: 2 })).toEqual([]);
    expect(problems({ maxErrors: 30 })).toEqual([]);
  });

  test('a fromParameter naming an undeclared or a non-text parameter is refused at its place', () => {
    expect(problems({ targets: { fromParameter: 'hosts' } })).toEqual([
      expect.stringMatching(/^targets\.fromParameter: targets\.fromParameter names "hosts", which is not a declared/),
    ]);
    const parameters = { count: { type: 'integer' }, flag: { type: 'boolean' } };
    expect(problems({ targets: { fromParameter: 'count' }, parameters })).toEqual([
      expect.stringContaining('names "count", an integer parameter, but targets come from instance ids or Name tags'),
    ]);
    expect(problems({ targets: { fromParameter: 'flag' }, parameters })).toEqual([
      expect.stringContaining('names "flag", a boolean parameter'),
    ]);
  });
});

describe('targets by Name tag', () => {
  test('resolve to the instances carrying those Name tags, in fleet order', () => {
    expect(selectTargets('restart-web', { names: ['web-2', 'web-1'] }, fleet)).toEqual([
      { instanceId: WEB_1, name: 'web-1' },
      { instanceId: WEB_2, name: 'web-2' },
    ]);
  });

  test('a name no instance carries is refused, naming it', () => {
    const error = caught(() => selectTargets('restart-web', { names: ['web-1', 'web-9'] }, fleet));
    expect(error).toMatchObject({ code: 'TARGETS_INVALID' });
    expect(error.message).toBe(
      'restart-web targets the instance named web-9, but no managed instance carries that Name tag; check the names',
    );
  });

  test('a Name tag two instances share targets both, as an SSM tag target would', () => {
    const twins = [...fleet, { id: 'i-0aaaaaaaaaaaaaaa3', name: 'web-1', tags: {}, online: true }];
    expect(selectTargets('restart-web', { names: ['web-1'] }, twins).map((t) => t.instanceId)).toEqual([
      WEB_1,
      'i-0aaaaaaaaaaaaaaa3',
    ]);
    // --target by that name picks both too.
    expect(
      selectTargets('restart-web', { names: ['web-1', 'web-2'] }, twins, ['web-1']).map((t) => t.instanceId),
    ).toEqual([WEB_1, 'i-0aaaaaaaaaaaaaaa3']);
  });
});

describe('targets from a parameter', () => {
  const scope = { fromParameter: 'hosts', within: { tags: { Role: 'web' } } } as const;
  const webOnly = fleet.filter((i) => i.name?.startsWith('web'));

  test('a string value is one id or Name tag; a list is several; ids and names are looked up apart', () => {
    expect(lookupsFor('rb', scope, { hosts: 'web-1' })).toEqual({
      wanted: [{ names: ['web-1'] }],
      values: ['web-1'],
      within: { tags: { Role: 'web' } },
    });
    expect(lookupsFor('rb', { fromParameter: 'hosts' }, { hosts: [WEB_2, 'web-1', WEB_2] })).toEqual({
      wanted: [{ instanceIds: [WEB_2] }, { names: ['web-1'] }],
      values: [WEB_2, 'web-1'],
    });
    expect(lookupsFor('rb', { tags: { Role: 'web' } }, {})).toEqual({ wanted: [{ tags: { Role: 'web' } }] });
  });

  test('an empty value is refused in one sentence', () => {
    for (const hosts of [[], '', undefined, ['web-1', ' ']]) {
      expect(caught(() => lookupsFor('restart-web', scope, { hosts })).message).toBe(
        'restart-web runs on the instances named by its parameter "hosts"; give it at least one instance id or Name tag',
      );
    }
  });

  test('the instances named, by id or Name tag, inside the bound, in the order given', () => {
    const values = [WEB_2, 'web-1'];
    expect(selectTargets('restart-web', scope, fleet, [], { values, within: webOnly })).toEqual([
      { instanceId: WEB_2, name: 'web-2' },
      { instanceId: WEB_1, name: 'web-1' },
    ]);
  });

  test('an instance outside the bound is refused, naming it and the bound', () => {
    const error = caught(() =>
      selectTargets('restart-web', scope, fleet, [], { values: ['web-1', 'db-1'], within: webOnly }),
    );
    expect(error).toMatchObject({ code: 'TARGETS_INVALID' });
    expect(error.message).toBe(
      `parameter "hosts" names db-1 (${DB_1}), outside what restart-web may target (tags Role=web); name instances inside that bound`,
    );
  });

  test('with a bound but nothing known inside it, nothing is allowed (fail closed)', () => {
    expect(caught(() => selectTargets('restart-web', scope, fleet, [], { values: ['web-1'] }))).toMatchObject({
      code: 'TARGETS_INVALID',
    });
  });

  test('a value that is neither an id nor a Name tag is refused, naming it', () => {
    const error = caught(() =>
      selectTargets('restart-web', scope, fleet, [], { values: ['web-1', 'web-9'], within: webOnly }),
    );
    expect(error.message).toBe(
      'parameter "hosts" names web-9, which is neither the id nor the Name tag of a managed instance; check the value',
    );
  });

  test('without a bound, any instance found may be named', () => {
    expect(
      selectTargets('restart-web', { fromParameter: 'hosts' }, fleet, [], { values: ['db-1'] }).map(
        (t) => t.instanceId,
      ),
    ).toEqual([DB_1]);
  });

  test('--target still only narrows what the parameter named', () => {
    const values = ['web-1', 'web-2'];
    expect(selectTargets('restart-web', scope, fleet, ['web-2'], { values, within: webOnly })).toEqual([
      { instanceId: WEB_2, name: 'web-2' },
    ]);
    expect(
      caught(() => selectTargets('restart-web', scope, fleet, ['db-1'], { values, within: webOnly })).message,
    ).toMatch(/^db-1 is not among the instances restart-web may target: web-1/);
  });
});

describe('rate control', () => {
  test('a step setting wins over the runbook; nothing set leaves SSM defaults and adds no field', () => {
    expect(rateControlOf({ maxConcurrency: 2, maxErrors: '10%' }, {})).toEqual({
      maxConcurrency: '2',
      maxErrors: '10%',
    });
    expect(rateControlOf({ maxConcurrency: 2, maxErrors: 1 }, { maxConcurrency: '50%', maxErrors: 0 })).toEqual({
      maxConcurrency: '50%',
      maxErrors: '0',
    });
    expect(rateControlOf({}, {})).toEqual({});
  });

  test.each([
    ['1', 3, 'concurrency', 1],
    ['25%', 3, 'concurrency', 1],
    ['34%', 3, 'concurrency', 2],
    ['100%', 3, 'concurrency', 3],
    ['1%', 1, 'concurrency', 1],
    ['25%', 3, 'errors', 0],
    ['34%', 3, 'errors', 1],
    ['10%', 50, 'errors', 5],
    ['0', 3, 'errors', 0],
  ] as const)('%s of %i targets allows %s %i', (value, targets, kind, expected) => {
    expect(rateLimitCount(value, targets, kind)).toBe(expected);
  });

  test('the plan says it as a reader would', () => {
    expect(rateControlText({ maxConcurrency: '1', maxErrors: '0' }, 3)).toBe(
      'at most 1 instance at a time, no further instance after the first failure',
    );
    expect(rateControlText({ maxConcurrency: '50%', maxErrors: '34%' }, 3)).toBe(
      'at most 2 instances (50%) at a time, no further instance once more than 1 fail (34%)',
    );
    expect(rateControlText({}, 3)).toBeUndefined();
  });
});

describe('the plan', () => {
  const input = (rb: Runbook): PlanInput => ({
    executionId: 'exec-0001',
    runbook: rb,
    runbookDigest: 'rb-digest-1',
    rawParams: {},
    targets: [{ instanceId: WEB_1, name: 'web-1' }, { instanceId: WEB_2 }, { instanceId: DB_1 }],
    requester: 'alice@example.com',
    reason: 'INC-42: workers stuck',
    region: 'eu-west-1',
    now: new Date('2025-01-01T10:00:00.000Z'),
  });

  test('carries each step its rate control, the step’s own first', () => {
    const rb = runbook({
      maxConcurrency: 1,
      maxErrors: 0,
      steps: [
        { name: 'drain', script: 'echo drain', timeoutSeconds: 60 },
        { name: 'restart', script: 'echo restart', timeoutSeconds: 60, maxConcurrency: '50%', maxErrors: '34%' },
      ],
    });
    const { plan } = buildPlan(input(rb));
    expect(plan.steps).toEqual([
      { name: 'drain', script: 'echo drain', timeoutSeconds: 60, maxConcurrency: '1', maxErrors: '0' },
      { name: 'restart', script: 'echo restart', timeoutSeconds: 60, maxConcurrency: '50%', maxErrors: '34%' },
    ]);
  });

  test('without rate control a step keeps its old shape, so old plans keep their digests', () => {
    const { plan } = buildPlan(input(runbook()));
    expect(Object.keys(plan.steps[0]!).sort()).toEqual(['name', 'script', 'timeoutSeconds']);
  });

  test('the digest covers rate control: approvers approve how fast it goes', () => {
    const digest = (extra: Record<string, unknown>) => buildPlan(input(runbook(extra))).planDigest;
    const base = digest({});
    expect(digest({ maxConcurrency: 1 })).not.toBe(base);
    expect(digest({ maxConcurrency: 2 })).not.toBe(digest({ maxConcurrency: 1 }));
    expect(digest({ maxErrors: 1 })).not.toBe(base);
    expect(digest({})).toBe(base);
  });

  test('the credentials last through every wave of a rate-limited step', () => {
    const one = buildPlan(input(runbook({ steps: [{ name: 'slow', script: 'echo', timeoutSeconds: 3600 }] }))).plan;
    const serial = buildPlan(
      input(runbook({ maxConcurrency: 1, steps: [{ name: 'slow', script: 'echo', timeoutSeconds: 3600 }] })),
    ).plan;
    // Three instances one at a time: two more waves of the step's whole timeout.
    expect(serial.budgetSeconds - one.budgetSeconds).toBe(2 * 3600);
    expect(queuedSeconds(serial.steps[0]!, 3)).toBe(7200);
    expect(queuedSeconds(serial.steps[0]!, 1)).toBe(0);
    expect(queuedSeconds(one.steps[0]!, 3)).toBe(0);
  });
});

describe('the session policy for many instances', () => {
  const base = { region: 'eu-west-1', accountId: '123456789012' };
  // Enough instance ARNs to pass the STS limit, so the policy falls back to the runbook's bound.
  const many = Array.from({ length: 40 }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);
  const sendStatements = (policy: string) =>
    (JSON.parse(policy) as { Statement: { Sid: string; Resource: unknown; Condition?: unknown }[] }).Statement.filter(
      (s) => s.Sid !== 'OnlyShellDocument' && s.Sid !== 'FollowAndCancel',
    );

  test('targets by name fall back to the Name tags the runbook lists', () => {
    const policy = buildSessionPolicy({ ...base, instanceIds: many, scope: { names: ['web-1', 'web-2'] } });
    expect(sendStatements(policy)).toEqual([
      {
        Sid: 'OnlyTaggedInstances',
        Effect: 'Allow',
        Action: 'ssm:SendCommand',
        Resource: 'arn:aws:ec2:eu-west-1:123456789012:instance/*',
        Condition: { StringEquals: { 'ssm:resourceTag/Name': ['web-1', 'web-2'] } },
      },
    ]);
  });

  test('targets from a parameter fall back to the within bound, never wider; without a tag bound, refused', () => {
    const within = { fromParameter: 'hosts', within: { tags: { Role: 'web' } } };
    expect(sendStatements(buildSessionPolicy({ ...base, instanceIds: many, scope: within }))).toMatchObject([
      { Condition: { StringEquals: { 'ssm:resourceTag/Role': 'web' } } },
    ]);
    for (const scope of [{ fromParameter: 'hosts' }, { fromParameter: 'hosts', within: { instanceIds: many } }]) {
      expect(caught(() => buildSessionPolicy({ ...base, instanceIds: many, scope }))).toMatchObject({
        code: 'TARGETS_INVALID',
      });
    }
  });
});

describe('what approvers read', () => {
  const planned = (extra: Record<string, unknown>) =>
    buildPlan({
      executionId: 'exec-0001',
      runbook: runbook(extra),
      runbookDigest: 'rb-digest-1',
      rawParams: {},
      targets: [{ instanceId: WEB_1, name: 'web-1' }, { instanceId: WEB_2 }, { instanceId: DB_1 }],
      requester: 'alice@example.com',
      reason: 'INC-42: workers stuck',
      region: 'eu-west-1',
      now: new Date('2025-01-01T10:00:00.000Z'),
    });

  // The TUI reads the plan as the API sends it: through the contract's schema, which must keep the fields.
  test('mechanic plan and the TUI plan review say how fast a step goes and when it stops', () => {
    const { plan, planDigest } = planned({ maxConcurrency: 1, maxErrors: 0 });
    const said = 'at most 1 instance at a time, no further instance after the first failure';
    expect(formatPlanDetail(plan, planDigest)).toContain(`runs on 3 instances, ${said}:`);
    expect(planLines(PlanSchema.parse(plan), planDigest).map((l) => l.text)).toContainEqual(
      `1. restart  (timeout 2m00s) on every target, ${said}:`,
    );
  });

  test('a plan without rate control reads as before', () => {
    const { plan, planDigest } = planned({});
    expect(formatPlanDetail(plan, planDigest)).toContain('runs on 3 instances:');
    expect(planLines(PlanSchema.parse(plan), planDigest).map((l) => l.text)).toContainEqual(
      '1. restart  (timeout 2m00s) on every target:',
    );
  });
});
