/**
 * The Slack message of a run is a pure function of its view. Whatever a person typed (reason,
 * parameter values, names) shows as typed: never a mention, a channel ping, a link or a button.
 */
import { describe, expect, test } from 'vitest';
import type { ExecutionView } from '../../src/core/execution.ts';
import type { Plan } from '../../src/core/plan.ts';
import {
  APPROVE_ACTION,
  REJECT_ACTION,
  decodeButtonValue,
  encodeButtonValue,
  rejectModal,
  runMessage,
  slackText,
  summaryMessage,
} from '../../src/slack/message.ts';
import { testInput } from '../helpers/plans.ts';

const DIGEST = 'a1b2c3d4e5f6'.padEnd(64, '0');

function viewOf(plan: Plan, over: Partial<ExecutionView> = {}): ExecutionView {
  return {
    executionId: plan.executionId,
    status: 'awaiting_approval',
    planDigest: DIGEST,
    plan,
    approval: { status: 'pending', approvedBy: [], missing: plan.approval.required },
    votes: [],
    steps: [],
    ...over,
  };
}

const HOSTILE = [
  '<!channel> deploy now',
  '<!here|here>',
  '<@U0ADMIN> approved this',
  '<https://evil.example/approve|Approve>',
  '<#C0SECRET>',
  'a &lt;b&gt; c &amp; d',
  'safe \u202Eevil\u202C text',
  'colour \u001b[31mred\u001b[0m',
  'zero\u200Bwidth',
];

/** Every piece of text Slack renders from the blocks. */
function texts(blocks: readonly Record<string, unknown>[]): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if ((o['type'] === 'mrkdwn' || o['type'] === 'plain_text') && typeof o['text'] === 'string') out.push(o['text']);
      Object.values(o).forEach(walk);
    }
  };
  walk(blocks);
  return out;
}

function buttons(blocks: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return blocks
    .filter((b) => b['type'] === 'actions')
    .flatMap((b) => b['elements'] as Record<string, unknown>[])
    .filter((e) => e['type'] === 'button');
}

describe('the request message', () => {
  const { plan } = testInput({ required: 2 });
  const withMeta = {
    ...plan,
    runbook: { ...plan.runbook, risk: 'high', owners: ['team-web', 'carol'], approvalGroups: ['sre', 'dba'] },
  } as Plan;

  test('shows what an approver needs: runbook, risk, owners, requester, reason, parameters, targets, role, lifetime, digest, approvals', () => {
    const m = runMessage(viewOf(withMeta), { runUrl: 'https://mechanic.example/runs/x' });
    const all = texts(m.blocks).join('\n');
    expect(all).toContain('test-runbook@3');
    expect(all).toContain('*Risk*\nhigh');
    expect(all).toContain('team-web, carol');
    expect(all).toContain('*Requested by*\nalice');
    expect(all).toContain('workflow test');
    expect(all).toContain('word = `hello`');
    expect(all).toContain('*Targets: 2*\nweb-1 (i-0d3f1ee7000000001), web-2 (i-0d3f1ee7000000002)');
    expect(all).toContain('arn:aws:iam::123456789012:role/mechanic-runner in us-east-1');
    expect(all).toContain('*Credentials live*\n');
    expect(all).toContain('`a1b2c3d4e5f6`');
    expect(all).toContain('0 of 2 approvals; 2 more needed from sre or dba');
    expect(all).toContain('approvals from two different groups');
    expect(all).toContain('<https://mechanic.example/runs/x|Open the run in mechanic>');
  });

  test('the buttons carry the execution id and the plan digest, and nothing else', () => {
    const b = buttons(runMessage(viewOf(plan)).blocks);
    expect(b.map((x) => x['action_id'])).toEqual([APPROVE_ACTION, REJECT_ACTION]);
    for (const x of b) {
      expect(decodeButtonValue(x['value'])).toEqual({ executionId: plan.executionId, planDigest: DIGEST });
    }
  });

  test.each(['running', 'completed', 'failed', 'expired', 'cancelled', 'rejected'] as const)(
    'once %s, the message has no buttons and says so',
    (status) => {
      const m = runMessage(viewOf(plan, { status }));
      expect(buttons(m.blocks)).toEqual([]);
      expect(texts(m.blocks).join('\n').toLowerCase()).toContain(status === 'expired' ? 'expired' : status);
    },
  );

  test('only at most five targets are named, with how many more', () => {
    const many = {
      ...plan,
      targets: Array.from({ length: 12 }, (_, i) => ({ instanceId: `i-${String(i).padStart(17, '0')}` })),
    };
    const all = texts(runMessage(viewOf(many)).blocks).join('\n');
    expect(all).toContain('*Targets: 12*');
    expect(all).toContain('and 7 more');
    expect(all).not.toContain('i-00000000000000005');
  });

  test.each(HOSTILE)('hostile text %j is shown inert wherever it appears', (evil) => {
    const hostile = {
      ...plan,
      requester: evil,
      reason: evil,
      params: { [evil]: evil },
      targets: [{ instanceId: 'i-1', name: evil }],
      runbook: { ...plan.runbook, description: evil, owners: [evil], approvalGroups: [evil] },
    } as unknown as Plan;
    const view = viewOf(hostile, {
      approval: { status: 'rejected', by: evil, comment: evil },
      status: 'rejected',
      reason: evil,
    });
    for (const m of [runMessage(view), summaryMessage(view)]) {
      for (const t of [...texts(m.blocks), m.text]) {
        // No control sequence Slack would parse: every < is escaped, and no raw & entity is forged.
        expect(t).not.toMatch(/<[!@#h]/);
        expect(t).not.toMatch(/[\u001b\u202e\u202c\u200b]/);
      }
      expect(buttons(m.blocks)).toEqual([]);
    }
    const all = texts(runMessage(view).blocks).join('\n');
    expect(all).toContain(slackText(evil));
  });

  test('hostile text cannot add a button to a waiting run’s message', () => {
    const hostile = {
      ...plan,
      reason: '<https://evil|Approve>',
      params: { x: '{"type":"button"}' },
    } as unknown as Plan;
    const b = buttons(runMessage(viewOf(hostile)).blocks);
    expect(b).toHaveLength(2);
  });

  test('slackText escapes &, < and > after neutralising, and cuts long text', () => {
    expect(slackText('<@U1> & <!channel>')).toBe('&lt;@U1&gt; &amp; &lt;!channel&gt;');
    expect(slackText('\u202Ex')).toBe('&lt;U+202E&gt;x');
    expect(slackText('y'.repeat(300), 10)).toBe(`${'y'.repeat(9)}…`);
  });

  test('a button value that is not mechanic’s is not read as one', () => {
    const ok = encodeButtonValue({ executionId: 'mx-abc', planDigest: DIGEST });
    expect(decodeButtonValue(ok)).toEqual({ executionId: 'mx-abc', planDigest: DIGEST });
    for (const bad of [
      undefined,
      'nope',
      '{"e":"mx-abc"}',
      '{"e":"../../x","d":"' + DIGEST + '"}',
      '{"e":"mx-abc","d":"short"}',
      'x'.repeat(600),
    ]) {
      expect(decodeButtonValue(bad)).toBeUndefined();
    }
  });

  test('the reject modal carries the run and digest and asks for a reason of 3 to 500 characters', () => {
    const m = rejectModal({ executionId: 'mx-abc', planDigest: DIGEST }, 'deploy-web@1', 'C0APPROVE');
    expect(JSON.parse(m['private_metadata'] as string)).toEqual({ e: 'mx-abc', d: DIGEST, c: 'C0APPROVE' });
    expect(JSON.stringify(m)).toContain('"min_length":3');
  });

  test('the summary lists each step and instance with its result', () => {
    const view = viewOf(plan, {
      status: 'completed',
      steps: [
        {
          name: 'first',
          phase: 'main',
          status: 'succeeded',
          commandId: 'c-1',
          instances: [
            {
              instanceId: 'i-0d3f1ee7000000001',
              status: 'Success',
              statusDetails: 'Success',
              responseCode: 0,
              stdout: 'hello\n',
              stderr: '',
              outputSha256: '0',
            },
          ],
        },
      ],
    });
    const text = texts(summaryMessage(view).blocks).join('\n');
    expect(text).toContain('Completed');
    expect(text).toContain('✓ first: succeeded — 1/1 instances ok');
    expect(text).toContain('i-0d3f1ee7000000001: Success (exit 0) `hello`');
  });

  test('a step on more than 50 instances is counted from its summary, not from the unsuccessful ones it lists', () => {
    const failed = ['i-0d3f1ee7000000007', 'i-0d3f1ee7000000042', 'i-0d3f1ee7000000099'].map((instanceId) => ({
      instanceId,
      status: 'Failed' as const,
      statusDetails: 'Failed',
      responseCode: 1,
      stdout: '',
      stderr: '',
      outputSha256: '',
    }));
    const view = viewOf(plan, {
      status: 'failed',
      steps: [
        {
          name: 'first',
          phase: 'main',
          status: 'failed',
          instances: failed,
          summary: { total: 120, byStatus: { Success: 117, Failed: 3 } },
        },
      ],
    });
    for (const message of [runMessage(view), summaryMessage(view)]) {
      const text = texts(message.blocks).join('\n');
      expect(text).toContain('✗ first: failed — 117/120 instances ok');
    }
  });
});
