import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_ROLE_ARN, defaultFleetConfig, lightInstanceId } from '../../src/devfleet/config.ts';
import { writeOwnerOnly } from '../helpers/claims.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

/**
 * The planner on the real stack (`mechanic dev`: its devfleet process, API server and inventory)
 * selects every instance a tag matches, past DescribeInstanceInformation's first page and past
 * the 100 values one filter takes: `mechanic plan` shows all 130 light instances by their Name
 * tags, and `--target` finds one on the last page.
 */

const COUNT = 130;
const RUNBOOK = `name: wide-fleet
version: 1
description: One step on every instance of the wide light fleet.
roleArn: ${DEMO_ROLE_ARN}
targets:
  tags: { Role: wide }
steps:
  - name: hello
    timeoutSeconds: 60
    script: echo hello
`;

interface Planned {
  plan: { targets: { instanceId: string; name?: string }[] };
}

describe('planning on a fleet wider than a page', () => {
  let stack: DevStack;
  let scratch: string;
  const cli = (...args: string[]) => runCli(args, stack.env);

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'mechanic-wide-'));
    const home = path.join(scratch, 'home');
    const root = {
      accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
    };
    await writeOwnerOnly(path.join(home, 'devfleet', 'root.json'), JSON.stringify(root));
    await writeOwnerOnly(
      path.join(home, 'devfleet', 'fleet.json'),
      JSON.stringify({
        ...defaultFleetConfig(root),
        lightInstances: [{ count: COUNT, namePrefix: 'wide', tags: { Role: 'wide' }, commandMs: 10 }],
      }),
    );
    const runbooksDir = path.join(scratch, 'runbooks');
    await writeOwnerOnly(path.join(runbooksDir, 'wide-fleet.yaml'), RUNBOOK);
    stack = await startDevStack({ MECHANIC_HOME: home, MECHANIC_RUNBOOKS_DIR: runbooksDir });
  });
  afterAll(async () => {
    const code = await stack?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  test('mechanic plan targets all 130 instances the tag selects, each by its Name tag', async () => {
    const planned = await cli('plan', 'wide-fleet', '--as', 'alice', '--json');
    expect(planned.stderr).toBe('');
    const { plan } = JSON.parse(planned.stdout) as Planned;
    expect(plan.targets.map((t) => [t.instanceId, t.name])).toEqual(
      Array.from({ length: COUNT }, (_, i) => [lightInstanceId(0, i + 1), `wide-${i + 1}`]),
    );
  });

  test('--target names an instance from the last page', async () => {
    const planned = await cli('plan', 'wide-fleet', '--target', `wide-${COUNT}`, '--as', 'alice', '--json');
    expect(planned.stderr).toBe('');
    const { plan } = JSON.parse(planned.stdout) as Planned;
    expect(plan.targets).toEqual([{ instanceId: lightInstanceId(0, COUNT), name: `wide-${COUNT}` }]);
  });
});
