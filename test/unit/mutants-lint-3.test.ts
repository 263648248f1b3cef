/**
 * src/core/lint.ts builds the runbook's JSON schema once per process, the first time an unknown
 * field needs a "did you mean" (issue 12, mutation round six left `jsonSchema ??= …` → `&&=`
 * alive: an earlier test had built the schema, so the mutant never saw the first use). Each case
 * here loads a fresh instance of lint.ts, whose cache is empty, and asks it first thing.
 */
import { expect, test, vi } from 'vitest';

const RUNBOOK = [
  'name: cached',
  'version: 1',
  'description: A runbook with one misspelt field.',
  'roleArn: arn:aws:iam::123456789012:role/mechanic-runner',
  'targets: { tags: { Role: web } }',
  'steps: [{ name: ok, script: "true", timeoutSecond: 30 }]',
].join('\n');

/**
 * lint.ts (and what it imports) as a process that has not linted anything yet has it: under
 * `isolate: false` (the mutation config) every test file shares one module registry, so a plain
 * import would get the instance an earlier file already warmed. Each instance is loaded here, at
 * the top of the file and not inside a test: code that runs when a module loads must stay outside
 * every test, or Stryker counts it as covered by that test and judges a regular expression or a
 * table built at load by switching its mutant on after the build (docs/mutation.md).
 */
async function freshLint() {
  vi.resetModules();
  return import('../../src/core/lint.ts');
}
const first = await freshLint();
const second = await freshLint();

test('the first unknown field a fresh process meets gets its "did you mean", and so does the next', () => {
  const { lintRunbookText, formatProblem } = first;
  const expected = [
    'x.yaml:6:37: "timeoutSecond" is not a field of steps[0]; did you mean "timeoutSeconds"? [unknown-field]',
  ];
  expect(lintRunbookText('x.yaml', RUNBOOK).problems.map(formatProblem)).toEqual(expected);
  // The schema built for the first is the one the second uses.
  expect(lintRunbookText('x.yaml', RUNBOOK).problems.map(formatProblem)).toEqual(expected);
});

test('a fresh instance is really fresh: its first suggestion at the top level needs the schema too', () => {
  const { lintRunbookText, formatProblem } = second;
  const text = RUNBOOK.replace('description:', 'descripton:');
  expect(lintRunbookText('x.yaml', text).problems.map(formatProblem)).toContain(
    'x.yaml:3:1: "descripton" is not a runbook field; did you mean "description"? [unknown-field]',
  );
});
