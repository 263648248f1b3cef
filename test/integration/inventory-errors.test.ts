/**
 * When AWS refuses the planner, the person planning gets one sentence (what could not be done,
 * AWS's own words, what to do), not "the server failed to handle this request": the inventory's
 * AssumeRole and SSM look-ups against devfleet through the real SDK.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createSsmClient, createStsClient } from '../../src/activities/aws.ts';
import { createInventory } from '../../src/activities/inventory.ts';
import { UserError } from '../../src/core/errors.ts';
import { DEMO_ROLE_ARN } from '../../src/devfleet/index.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';
import { rejectionOf } from '../helpers/core-samples.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
}, 60_000);
afterAll(async () => {
  await h?.close();
});

const aws = () => ({ region: REGION, endpoint: h.fleet.endpoint, baseCredentials: ROOT });

describe('the inventory names what AWS refused', () => {
  test('a role STS will not let the server assume: STS_FAILED, the role, AWS’s words, and what to check', async () => {
    const role = 'arn:aws:iam::123456789012:role/no-such-role';
    const inv = createInventory({ sts: createStsClient(aws()), ssmFor: (c) => createSsmClient(aws(), c) });
    const e = await rejectionOf(inv.instancesFor(role, { tags: { Role: 'web' } }), UserError);
    expect(e.code).toBe('STS_FAILED');
    expect(e.message).toMatch(
      new RegExp(
        `^the server could not assume the runbook's role ${role} to look up its instances \\(\\w+: .+\\); check the role's trust policy and permissions for the server's credentials$`,
      ),
    );
    expect(e.message.split('\n')).toHaveLength(1);
  });

  test('SSM refusing the look-up: SSM_COMMAND_FAILED naming the role, in one sentence', async () => {
    const inv = createInventory({
      sts: createStsClient(aws()),
      // Session keys SSM does not accept (the secret is wrong), as a broken credential chain would give.
      ssmFor: (c) => createSsmClient(aws(), { ...c, secretAccessKey: 'not-the-secret' }),
    });
    const e = await rejectionOf(inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } }), UserError);
    expect(e.code).toBe('SSM_COMMAND_FAILED');
    expect(e.message).toMatch(
      new RegExp(
        `^SSM did not list the instances of role ${DEMO_ROLE_ARN} \\(\\w+: .+\\); check the role's trust policy`,
      ),
    );
  });
});
