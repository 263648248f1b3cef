import { describe, expect, test } from 'vitest';
import { formatAudit, formatExecution, formatPlan, formatRunbooks } from '../../cli/format.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import type { Plan } from '../../src/core/plan.ts';
import { testInput } from '../helpers/plans.ts';

const ESC = '\u001b';

/** No escape, no bidi or invisible format character, no control character but the line break. */
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]/u;
function inert(text: string): void {
  expect(text).not.toMatch(UNSAFE);
}

/**
 * Text stored before the refusals existed, or through a channel that does not check, must still be
 * shown inert. Regression: a vote comment with U+202E and a newline was stored and printed raw.
 */
function hostilePlan(): { plan: Plan; planDigest: string } {
  const { plan, planDigest } = testInput({ executionId: 'mx-format01' });
  return {
    planDigest,
    plan: {
      ...plan,
      reason: `fix ${ESC}[2J${ESC}[Hall clear\nplan      0000`,
      requester: `alice${ESC}]0;owned\u0007`,
      params: { word: 'evil\u202egnp.exe' },
      targets: [{ instanceId: 'i-0d3f1ee7000000001', name: `web-1${ESC}[8m hidden` }],
    },
  };
}

describe('formatPlan', () => {
  test('a hostile reason, requester, parameter and instance name are shown inert', () => {
    const { plan, planDigest } = hostilePlan();
    const text = formatPlan(plan, planDigest);
    inert(text);
    expect(text.split('\n').slice(1, 4)).toEqual([
      'requester alice — "fix all clear<U+000A>plan      0000"',
      'params    word="evil<U+202E>gnp.exe"',
      'targets   web-1 hidden (i-0d3f1ee7000000001)',
    ]);
  });
});

describe('formatExecution', () => {
  const { plan, planDigest } = hostilePlan();
  const view = (approval: ExecutionView['approval']): ExecutionView => ({
    executionId: 'mx-format01',
    status: 'failed',
    planDigest,
    plan,
    approval,
    votes: [],
    reason: `step failed${ESC}[31m`,
    steps: [
      {
        name: 'first',
        phase: 'main',
        status: 'failed',
        commandId: 'cmd-1',
        instances: [
          {
            instanceId: 'i-0d3f1ee7000000001',
            status: 'Failed',
            statusDetails: 'Failed',
            responseCode: 1,
            stdout: `${ESC}[32mok${ESC}[0m\r\nprogress 10%\rprogress 100%\n\u202eevil\n`,
            stderr: `boom${ESC}[1A${ESC}[2K\n`,
            outputSha256: '0'.repeat(64),
          },
        ],
      },
    ],
  });

  test('a rejection comment with a direction override and a newline is shown inert', () => {
    const text = formatExecution(view({ status: 'rejected', by: 'bob', comment: 'looks \u202egood\napprovals bob' }));
    inert(text);
    expect(text).toContain('rejected  by bob: looks <U+202E>good<U+000A>approvals bob');
    expect(text.split('\n')[0]).toBe('mx-format01  FAILED — step failed');
  });

  test('command output keeps its lines, loses its escapes, and a carriage return cannot overwrite a line', () => {
    const text = formatExecution(view({ status: 'approved', approvedBy: ['bob'] }));
    inert(text);
    expect(text.split('\n').filter((l) => /^ {6}[|!]/.test(l))).toEqual([
      '      | ok',
      '      | progress 10%',
      '      | progress 100%',
      '      | <U+202E>evil',
      '      ! boom',
    ]);
  });
});

describe('formatAudit', () => {
  test('a stored comment, actor and reason are shown inert', () => {
    const text = formatAudit([
      {
        seq: 7,
        at: '2026-11-01T00:00:00.000Z',
        executionId: 'mx-format01',
        type: 'approval.rejected',
        actor: `bob${ESC}[8m`,
        data: { planDigest: 'x', comment: 'no\u2066 way\n#8 fake record' },
      },
      {
        seq: 8,
        at: '2026-11-01T00:00:01.000Z',
        executionId: 'mx-format01',
        type: 'execution.cancelled',
        actor: 'alice',
        data: { reason: `wrong window\u200f${ESC}c` },
      },
    ]);
    inert(text);
    expect(text.split('\n')).toEqual([
      '#7    2026-11-01T00:00:00.000Z  mx-format01   approval.rejected    bob       "no<U+2066> way<U+000A>#8 fake record"',
      '#8    2026-11-01T00:00:01.000Z  mx-format01   execution.cancelled  alice     wrong window<U+200F>',
    ]);
  });

  test('a folded refusal says how many it stands for, and when', () => {
    const text = formatAudit([
      {
        seq: 9,
        at: '2026-11-01T00:01:00.000Z',
        executionId: null,
        type: 'access.denied',
        actor: 'dave',
        data: {
          action: 'launch',
          reason: 'dave may not launch',
          count: 41,
          since: '2026-11-01T00:00:00.000Z',
          until: '2026-11-01T00:00:59.000Z',
        },
      },
    ]);
    expect(text).toBe(
      '#9    2026-11-01T00:01:00.000Z  -             access.denied        dave      dave may not launch (×41, 2026-11-01T00:00:00.000Z – 2026-11-01T00:00:59.000Z)',
    );
  });
});

describe('formatRunbooks', () => {
  const runbook = {
    name: 'deploy-web',
    version: 2,
    description: 'Deploy the web service.',
    parameters: { release: { type: 'string' }, dryRun: { type: 'boolean', default: false } },
    steps: [{ name: 'install' }, { name: 'switch' }],
  };

  test('valid runbooks, then the refused files marked with their errors', () => {
    expect(
      formatRunbooks(
        [runbook],
        [
          { file: 'bomb.yaml', error: 'bomb.yaml expands its YAML aliases (*name) too many times' },
          { file: 'typo.yaml', error: 'typo.yaml is not a valid runbook:\n✖ Unrecognized key: "stesp"' },
        ],
      ),
    ).toBe(
      [
        'deploy-web v2  Deploy the web service.',
        '    params: release dryRun=false; steps: install, switch',
        '2 runbook files were refused; the others are served:',
        '✗ bomb.yaml  INVALID',
        '    bomb.yaml expands its YAML aliases (*name) too many times',
        '✗ typo.yaml  INVALID',
        '    typo.yaml is not a valid runbook:',
        '    ✖ Unrecognized key: "stesp"',
      ].join('\n'),
    );
  });

  test('nothing refused: just the catalog', () => {
    expect(formatRunbooks([runbook], [])).toBe(
      'deploy-web v2  Deploy the web service.\n    params: release dryRun=false; steps: install, switch',
    );
  });

  test('a file name with an escape sequence is shown inert', () => {
    const text = formatRunbooks([], [{ file: `${ESC}[2Jx.yaml`, error: `${ESC}[2Jx.yaml is empty` }]);
    inert(text);
    expect(text).toBe(
      'no runbooks\n1 runbook file was refused; the others are served:\n✗ x.yaml  INVALID\n    x.yaml is empty',
    );
  });
});
