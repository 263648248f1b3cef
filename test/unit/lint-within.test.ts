import { describe, expect, test } from 'vitest';
import { formatProblem, lintRunbookText } from '../../src/core/lint.ts';
import { lookupsFor, selectTargets, type FleetInstance } from '../../src/core/targets.ts';
import type { Targets } from '../../src/core/runbook.ts';

/**
 * Lint of `targets.within` against an enum target parameter: a value the bound can never admit is
 * refused on every run, so lint names it at the value. Offline, lint knows only what a value says
 * of itself (an id its id, a name its Name tag); the rest depends on the fleet and is left to the plan.
 */

const ID_A = 'i-0aaaaaaaaaaaaaaaa';
const ID_B = 'i-0bbbbbbbbbbbbbbbb';

function lint(param: string, within: string): string[] {
  const text = [
    'name: pick-host',
    'version: 1',
    'description: Restarts a host the operator picks.',
    'roleArn: arn:aws:iam::123456789012:role/mechanic-runner',
    'parameters:',
    `  host: ${param}`,
    'targets:',
    '  fromParameter: host',
    ...(within === '' ? [] : [`  within: ${within}`]),
    'steps:',
    '  - name: restart',
    '    script: systemctl restart nginx',
    '',
  ].join('\n');
  return lintRunbookText('r.yaml', text).problems.map(formatProblem);
}

describe('an enum target parameter and its within bound', () => {
  test('a Name tag outside a names bound is named at the value, with the bound', () => {
    expect(lint('{ type: enum, values: [web-1, db-1, web-2] }', '{ names: [web-1, web-2] }')).toEqual([
      'r.yaml:6:39: parameter "host" offers "db-1", a Name tag outside targets.within (names web-1, web-2), so choosing it is always refused when the run is planned; remove the value or widen within [within-unreachable]',
    ]);
  });

  test('an instance id outside an instanceIds bound is named; a Name tag there cannot be judged offline', () => {
    expect(lint(`{ type: enum, values: [${ID_A}, ${ID_B}, web-3] }`, `{ instanceIds: [${ID_A}] }`)).toEqual([
      `r.yaml:6:53: parameter "host" offers "${ID_B}", an instance id outside targets.within (instances ${ID_A}), so choosing it is always refused when the run is planned; remove the value or widen within [within-unreachable]`,
    ]);
  });

  test('each item value of a list of enums is checked, at items.values', () => {
    const problems = lint('{ type: list, items: { type: enum, values: [web-1, web-9] } }', '{ names: [web-1] }');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^r\.yaml:6:60: parameter "host" offers "web-9", a Name tag outside/);
  });

  test('a tags bound on Name decides Name tags; other tags cannot be judged offline', () => {
    expect(lint(`{ type: enum, values: [web-1, web-2, ${ID_B}] }`, '{ tags: { Name: web-1, Role: web } }')).toEqual([
      'r.yaml:6:39: parameter "host" offers "web-2", a Name tag outside targets.within (tags Name=web-1, Role=web), so choosing it is always refused when the run is planned; remove the value or widen within [within-unreachable]',
    ]);
    expect(lint('{ type: enum, values: [web-1, db-1] }', '{ tags: { Role: web } }')).toEqual([]);
  });

  test.each([
    ['an id against a names bound', `{ type: enum, values: [${ID_B}] }`, '{ names: [web-1] }'],
    ['values inside the bound', '{ type: enum, values: [web-1, web-2] }', '{ names: [web-1, web-2] }'],
    ['no bound', '{ type: enum, values: [anything] }', ''],
    ['a string parameter', '{ type: string }', '{ names: [web-1] }'],
    // The planner trims a value before it looks it up, and so does lint.
    ['a value the planner trims', '{ type: enum, values: [" web-1 "] }', '{ names: [web-1] }'],
  ])('nothing is said for %s', (_what, param, within) => {
    expect(lint(param, within)).toEqual([]);
  });
});

describe('lint agrees with the planner', () => {
  // A fleet where every value names an instance: what remains is the bound's verdict.
  const fleet: FleetInstance[] = [
    { id: ID_A, name: 'web-1', tags: { Name: 'web-1', Role: 'web' }, online: true },
    { id: ID_B, name: 'db-1', tags: { Name: 'db-1', Role: 'db' }, online: true },
  ];
  const scope: Targets = { fromParameter: 'host', within: { names: ['web-1'] } };
  const plan = (value: string) => {
    const lookups = lookupsFor('pick-host', scope, { host: value });
    const within = fleet.filter((i) => i.name === 'web-1');
    return selectTargets('pick-host', scope, fleet, [], { values: lookups.values ?? [], within });
  };

  test('the value lint names is the value the plan refuses; the one it passes is planned', () => {
    expect(lint('{ type: enum, values: [web-1, db-1] }', '{ names: [web-1] }').join('\n')).toContain('"db-1"');
    expect(() => plan('db-1')).toThrow(/outside what pick-host may target \(names web-1\)/);
    expect(plan('web-1')).toEqual([{ instanceId: ID_A, name: 'web-1' }]);
  });
});
