/**
 * The registry commands' pure parts: the line diff `mechanic runbook diff` prints and the version
 * table `mechanic runbook list` prints. (The commands themselves run end to end in
 * registry-e2e.test.ts.)
 */
import { describe, expect, test } from 'vitest';
import { formatVersions } from '../../cli/commands/runbook-registry.ts';
import { lineDiff } from '../../src/core/line-diff.ts';

describe('lineDiff', () => {
  test('keeps common lines, marks removed and added ones, in order', () => {
    expect(lineDiff('a\nb\nc\n', 'a\nB\nc\nd\n')).toEqual([' a', '-b', '+B', ' c', '+d']);
  });
  test('identical texts are all context; empty against text is all additions', () => {
    expect(lineDiff('x\ny\n', 'x\ny\n')).toEqual([' x', ' y']);
    expect(lineDiff('', 'x\n')).toEqual(['-', '+x']);
  });
  test('a moved block shows as the smallest set of changes', () => {
    expect(lineDiff('1\n2\n3\n4\n', '2\n3\n4\n1\n')).toEqual(['-1', ' 2', ' 3', ' 4', '+1']);
  });
});

describe('formatVersions', () => {
  const base = {
    name: 'deploy-web',
    version: 2,
    digest: 'ab'.repeat(32),
    description: 'd',
    author: 'frank',
    publishedAt: '2026-01-01T00:00:00.000Z',
    source: { kind: 'git' as const, path: 'runbooks/deploy-web.yaml', commit: 'c'.repeat(40), clean: false },
    status: 'approved' as const,
    reviews: [
      {
        reviewer: 'carol',
        decision: 'approve' as const,
        digest: 'ab'.repeat(32),
        comment: 'ok',
        at: '2026-01-01T00:01:00.000Z',
      },
    ],
  };
  test('one line per version: status, author, reviewers, last run, digest and where it came from', () => {
    expect(
      formatVersions([
        base,
        {
          ...base,
          version: 1,
          status: 'deprecated',
          reviews: [],
          lastRunAt: '2026-01-02T00:00:00.000Z',
          source: { kind: 'file', path: 'x.yaml' },
        },
      ]),
    ).toBe(
      [
        'VERSION       STATUS      AUTHOR  REVIEWERS  LAST RUN                  DIGEST        SOURCE',
        'deploy-web@2  approved    frank   carol ✓    never                     abababababab  runbooks/deploy-web.yaml @ cccccccccccc (dirty)',
        'deploy-web@1  deprecated  frank   -          2026-01-02T00:00:00.000Z  abababababab  x.yaml',
      ].join('\n'),
    );
  });
  test('names shown are inert: an escape sequence in an author id cannot recolour the table', () => {
    expect(formatVersions([{ ...base, author: 'eve\u001b[31m' }])).not.toContain('\u001b');
  });
});
