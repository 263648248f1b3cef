import { describe, expect, test } from 'vitest';
import type { Targets } from '../../src/core/runbook.ts';
import { selectTargets, type FleetInstance } from '../../src/core/targets.ts';

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
const WEB_3 = 'i-0aaaaaaaaaaaaaaa3';
const DB_1 = 'i-0bbbbbbbbbbbbbbb1';
const PROD_WEB = 'i-0ccccccccccccccc1';

const inventory: readonly FleetInstance[] = [
  { id: WEB_1, name: 'web-1', tags: { Role: 'web', Env: 'staging' }, online: true },
  { id: WEB_2, name: 'web-2', tags: { Role: 'web', Env: 'staging' }, online: true },
  { id: WEB_3, tags: { Role: 'web', Env: 'staging' }, online: true },
  { id: DB_1, name: 'db-1', tags: { Role: 'db', Env: 'staging' }, online: true },
  { id: PROD_WEB, name: 'web-prod-1', tags: { Role: 'web', Env: 'prod' }, online: true },
];

const stagingWeb: Targets = { tags: { Role: 'web', Env: 'staging' } };

describe('scope', () => {
  test('a tag scope selects the instances carrying every tag', () => {
    expect(selectTargets('deploy-web', stagingWeb, inventory)).toEqual([
      { instanceId: WEB_1, name: 'web-1' },
      { instanceId: WEB_2, name: 'web-2' },
      { instanceId: WEB_3 },
    ]);
  });

  test('a tag value must match exactly', () => {
    const inv = [{ id: WEB_1, tags: { Role: 'Web', Env: 'staging' }, online: true }, ...inventory.slice(1)];
    expect(selectTargets('deploy-web', stagingWeb, inv).map((t) => t.instanceId)).toEqual([WEB_2, WEB_3]);
  });

  test('an instance-id scope selects those instances', () => {
    expect(selectTargets('deploy-web', { instanceIds: [DB_1, WEB_1] }, inventory)).toEqual([
      { instanceId: DB_1, name: 'db-1' },
      { instanceId: WEB_1, name: 'web-1' },
    ]);
  });

  test('no instance matching the tags is refused', () => {
    const error = caught(() => selectTargets('deploy-web', { tags: { Role: 'cache' } }, inventory));
    expect(error).toMatchObject({ code: 'TARGETS_INVALID' });
    expect(error.message).toMatchInlineSnapshot(
      `"no instance matches the targets of deploy-web; check the fleet's tags"`,
    );
  });

  test('an empty inventory is refused', () => {
    expect(caught(() => selectTargets('deploy-web', stagingWeb, []))).toMatchObject({ code: 'TARGETS_INVALID' });
  });

  test('an instance id SSM does not know is refused, naming it', () => {
    const error = caught(() => selectTargets('deploy-web', { instanceIds: [WEB_1, 'i-0ddddddddddddddd1'] }, inventory));
    expect(error).toMatchObject({ code: 'TARGETS_INVALID' });
    expect(error.message).toMatchInlineSnapshot(
      `"deploy-web targets i-0ddddddddddddddd1, which SSM does not know as managed instances"`,
    );
  });
});

describe('operator narrowing', () => {
  test.each([
    ['by id', [WEB_2], [{ instanceId: WEB_2, name: 'web-2' }]],
    ['by name', ['web-2'], [{ instanceId: WEB_2, name: 'web-2' }]],
    ['by id and name together', ['web-1', WEB_3], [{ instanceId: WEB_1, name: 'web-1' }, { instanceId: WEB_3 }]],
    ['the same instance twice', ['web-1', WEB_1], [{ instanceId: WEB_1, name: 'web-1' }]],
  ])('%s', (_how, requested, expected) => {
    expect(selectTargets('deploy-web', stagingWeb, inventory, requested)).toEqual(expected);
  });

  test('nothing requested means the whole scope', () => {
    expect(selectTargets('deploy-web', stagingWeb, inventory, [])).toHaveLength(3);
  });

  test.each([
    ['an instance outside the tag scope, by id', PROD_WEB],
    ['an instance outside the tag scope, by name', 'web-prod-1'],
    ['a typo', 'web-l'],
  ])('%s is refused', (_what, requested) => {
    expect(caught(() => selectTargets('deploy-web', stagingWeb, inventory, [requested]))).toMatchObject({
      code: 'TARGETS_INVALID',
    });
  });

  test('the refusal lists what is allowed', () => {
    expect(
      caught(() => selectTargets('deploy-web', stagingWeb, inventory, ['web-prod-1'])).message,
    ).toMatchInlineSnapshot(
      `"web-prod-1 is not among the instances deploy-web may target: web-1 (i-0aaaaaaaaaaaaaaa1), web-2 (i-0aaaaaaaaaaaaaaa2), i-0aaaaaaaaaaaaaaa3"`,
    );
  });

  test('several unknown names are listed together', () => {
    expect(
      caught(() => selectTargets('deploy-web', stagingWeb, inventory, ['web-1', 'db-1', 'web-9'])).message,
    ).toMatchInlineSnapshot(
      `"db-1, web-9 are not among the instances deploy-web may target: web-1 (i-0aaaaaaaaaaaaaaa1), web-2 (i-0aaaaaaaaaaaaaaa2), i-0aaaaaaaaaaaaaaa3"`,
    );
  });

  test('an instance-id scope cannot be widened to a known instance outside it', () => {
    expect(caught(() => selectTargets('deploy-web', { instanceIds: [WEB_1] }, inventory, [WEB_2]))).toMatchObject({
      code: 'TARGETS_INVALID',
    });
  });
});

describe('size', () => {
  const fleet = (n: number): FleetInstance[] =>
    Array.from({ length: n }, (_, i) => ({
      id: `i-${i.toString(16).padStart(17, '0')}`,
      tags: { Env: 'staging' },
      online: true,
    }));

  test('more than 10,000 instances are refused', () => {
    const error = caught(() => selectTargets('rotate-logs', { tags: { Env: 'staging' } }, fleet(10_001)));
    expect(error).toMatchObject({ code: 'TARGETS_INVALID' });
    expect(error.message).toMatchInlineSnapshot(
      `"10001 instances selected; a run may target at most 10,000, so narrow it with --target"`,
    );
  });

  test('10,000 instances are accepted (a step on them goes out as batches of 50)', () => {
    expect(selectTargets('rotate-logs', { tags: { Env: 'staging' } }, fleet(10_000))).toHaveLength(10_000);
  });

  test('a scope of more than 50 narrowed to fewer is accepted', () => {
    const big = fleet(80);
    const requested = big.slice(0, 3).map((i) => i.id);
    expect(selectTargets('rotate-logs', { tags: { Env: 'staging' } }, big, requested).map((t) => t.instanceId)).toEqual(
      requested,
    );
  });
});
