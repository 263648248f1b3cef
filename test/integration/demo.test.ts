import { inject, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.ts';

test('mechanic demo plays the whole story on a throwaway stack of its own', async () => {
  // Settings of a real deployment in the shell must not leak into the throwaway stack.
  const r = await runCli(['demo'], {
    ...process.env,
    TEMPORAL_CLI: inject('temporalCli'),
    DATABASE_URL: 'postgres://mechanic@127.0.0.1:1/production',
    MECHANIC_API_URL: 'http://127.0.0.1:1',
    TEMPORAL_ADDRESS: '127.0.0.1:1',
  });
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.code).toBe(0);
  const story = r.stdout;
  expect(story).toContain('refused (APPROVAL_SELF): alice requested this execution and cannot approve or reject it');
  expect(story).toContain('approval is now approved');
  expect(story).toMatch(/mx-[a-z0-9]{10} {2}COMPLETED/);
  expect(story).toContain('| serving v1.4.2');
  expect(story).toMatch(/execution\.requested +alice/);
  expect(story).toMatch(/approval\.refused +alice/);
  expect(story).toMatch(/approval\.granted +bob/);
  expect(story).toMatch(/chain intact: \d+ records/);
  expect(story).toMatch(/Done: mx-[a-z0-9]{10} completed\.\n$/);
});
