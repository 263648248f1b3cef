/**
 * The planner's inventory (src/activities/inventory.ts): what the planner is told when the STS
 * it was given fails with something that has no name. InventoryDeps takes any `send` (the
 * worker's is the SDK client, whose errors are named; a wrapper or a stand-in may throw a plain
 * object), and the sentence then says `Error:` where AWS's error name would be.
 *
 * Each mutant of the whole run (line:column as the run saw it), and what kills it or why it cannot be:
 * - 192:31 `err.name ?? 'Error'` → `?? ""`: "an STS failure without a name is told as an Error,
 *   with its message, and to try again".
 * - 193:85 `err.name ?? ''` → `?? 'Stryker was here!'`: equivalent, that string does not look like
 *   throttling either, so the advice is the same.
 * - 109:102 and 160:62 `[]` → `["Stryker was here"]`, 115:14 / 115:53 (the filter of the full
 *   listing), 168:9 `found.length > 0` → true / `>= 0`: equivalent, as mutants-inventory-2 says (a
 *   string has no InstanceId; names outside the selection are never read; nameTags of no ids asks
 *   nothing).
 */
import { describe, expect, test } from 'vitest';
import { createInventory } from '../../src/activities/inventory.ts';
import { UserError } from '../../src/core/errors.ts';
import { rejectionOf } from '../helpers/core-samples.ts';

const ROLE = 'arn:aws:iam::123456789012:role/planner';

describe('an STS failure without a name', () => {
  test('an STS failure without a name is told as an Error, with its message, and to try again', async () => {
    const inventory = createInventory({
      sts: {
        send: (async () => {
          // eslint-disable-next-line @typescript-eslint/only-throw-error -- what a stand-in throws is not always an Error
          throw { message: 'socket  hang\nup', $fault: 'server' };
        }) as never,
      },
      ssmFor: () => {
        throw new Error('no SSM client without credentials');
      },
    });
    const e = await rejectionOf(inventory.instancesFor(ROLE, { instanceIds: ['i-0d3f1ee7000000001'] }), UserError);
    expect(e.code).toBe('STS_FAILED');
    expect(e.message).toBe(
      `the server could not assume the runbook's role ${ROLE} to look up its instances (Error: socket hang up); try again in a moment`,
    );
  });
});
