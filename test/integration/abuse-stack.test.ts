/**
 * The API server process as `mechanic dev` runs it: its rate limits come from the config, and the
 * refusals it is still counting are written when it stops, before its audit store closes.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { refusalCount } from '../../src/core/audit-events.ts';
import { openAuditStore } from '../../src/store/audit-log.ts';
import { runCli, startDevStack, type CliResult, type DevStack } from '../helpers/cli.ts';

describe('rate limits and folded refusals in the running server', () => {
  let stack: DevStack;
  const results: CliResult[] = [];

  beforeAll(async () => {
    // A budget of three requests, refilled far slower than this test runs.
    stack = await startDevStack({ MECHANIC_RATE_LIMIT_BURST: '3', MECHANIC_RATE_LIMIT_PER_SECOND: '0.001' });
    for (let i = 0; i < 6; i++) {
      results.push(
        await runCli(
          ['launch', 'deploy-web', '--param', 'release=v1.0.0', '--reason', 'not mine to run', '--as', 'dave'],
          stack.env,
        ),
      );
    }
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('the configured budget holds: three refusals as forbidden, then one sentence saying to wait', () => {
    expect(results.map((r) => r.code)).toEqual([1, 1, 1, 1, 1, 1]);
    for (const r of results.slice(0, 3)) expect(r.stderr).toMatch(/^mechanic: dave \(auditor\) may not launch/);
    // How long to wait depends on when the request came (the server's clock is real here), not its form.
    for (const r of results.slice(3))
      expect(r.stderr).toMatch(/^mechanic: too many requests from dave; try again in \d+ s\n$/);
  });

  test('stopping the stack writes the counts it held, so all six refusals are on the record', async () => {
    // Stop mechanic dev as a person would, and read its audit log once everything has exited.
    stack.process.kill('SIGTERM');
    await new Promise<void>((resolve) =>
      stack.process.exitCode !== null || stack.process.signalCode !== null
        ? resolve()
        : stack.process.once('exit', () => resolve()),
    );
    const audit = await openAuditStore({ kind: 'sqlite', file: path.join(stack.home, 'audit.db') });
    try {
      const refusals = (await audit.list({ limit: 10_000 })).filter(
        (r) => r.actor === 'dave' && (r.type === 'access.denied' || r.type === 'request.refused'),
      );
      expect(refusals.map((r) => [r.type, r.data['code'] ?? r.data['action'], refusalCount(r)])).toEqual([
        ['access.denied', 'launch', 1],
        ['request.refused', 'RATE_LIMITED', 1],
        ['access.denied', 'launch', 2],
        ['request.refused', 'RATE_LIMITED', 2],
      ]);
    } finally {
      await audit.close();
    }
  });
});
