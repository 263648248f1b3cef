import { configDefaults, defineConfig } from 'vitest/config';

/**
 * The tests `npm run mutate` (Stryker) runs against each mutant: the unit tests and the real
 * activities against an in-process devfleet. Nothing here starts a Temporal server, so a
 * mutant is judged in seconds; the stack tests stay in `npm test`. docs/mutation.md says what
 * is scored and why the workflow function itself is not.
 */
export default defineConfig({
  test: {
    include: [
      'test/unit/**/*.test.ts',
      'test/integration/activities.test.ts',
      'test/integration/activities-sessions.test.ts',
      'test/integration/mutants-ssm.test.ts',
      'test/integration/mutants-ssm-2.test.ts',
      'test/integration/mutants-ssm-3.test.ts',
      'test/integration/mutants-inventory.test.ts',
      'test/integration/mutants-aws-2.test.ts',
      'test/integration/mutants-aws-3.test.ts',
      'test/integration/mutants-inventory-2.test.ts',
      'test/integration/mutants-inventory-3.test.ts',
    ],
    // Its vi.mock replaces the audit vocabulary (audit-event-check.ts) with one that takes
    // anything. Under isolate: false the files share one module registry, so every later file
    // would check events against the stand-in; what it pins (src/store) is not scored here.
    exclude: [...configDefaults.exclude, 'test/unit/verify-text-keys.test.ts'],
    // Two shared cores: Stryker runs one mutant at a time, and vitest one file at a time.
    maxWorkers: 1,
    // Mutants are switched on at run time, so modules need not be loaded afresh for each one:
    // reusing them makes a mutant run several times cheaper.
    isolate: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
