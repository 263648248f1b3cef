import { createInterface } from 'node:readline/promises';
import { loadConfig } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { formatPlan } from '../format.ts';
import { out } from '../output.ts';
import { neutralize } from '../../src/core/text.ts';

export const approve = (argv: string[]) => vote('approve', argv);
export const reject = (argv: string[]) => vote('reject', argv);

/** The shortest digest prefix accepted by --digest: enough that a stale plan cannot match by luck. */
const MIN_DIGEST_PREFIX = 8;

/**
 * Votes on the plan the voter has just been shown, and only after they confirmed it: on a
 * terminal by answering the question, elsewhere with --yes or with --digest naming the start of
 * the digest they reviewed. The vote carries that digest, so it can never attach to another plan.
 */
async function vote(decision: 'approve' | 'reject', argv: string[]): Promise<number> {
  const usage = `mechanic ${decision} <execution> ${decision === 'reject' ? '--comment "why"' : '[--comment text]'} [--yes | --digest <prefix>] [--as user] [--json]`;
  const { values, positionals } = parse(
    argv,
    {
      comment: { type: 'string', short: 'm' },
      yes: { type: 'boolean', short: 'y' },
      digest: { type: 'string' },
      as: { type: 'string' },
      json: { type: 'boolean' },
    },
    usage,
  );
  const [id, ...extra] = positionals;
  if (!id || extra.length) throw new UserError('USAGE', `name exactly one execution; usage: ${usage}`);
  if (decision === 'reject' && !values.comment)
    throw new UserError('USAGE', 'say why you reject it: add --comment "reason"');
  if (values.digest !== undefined && !new RegExp(`^[0-9a-f]{${MIN_DIGEST_PREFIX},64}$`).test(values.digest))
    throw new UserError(
      'USAGE',
      `--digest takes at least the first ${MIN_DIGEST_PREFIX} characters of the plan digest`,
    );
  const api = await connectApi(loadConfig(), values.as);
  const { execution } = await api.call('getExecution', { params: { id } });
  // The plan first, always: with --json it goes to stderr so stdout stays one JSON document.
  const shown = `${decision === 'approve' ? 'You are approving' : 'You are rejecting'} this plan of ${id}:\n${formatPlan(execution.plan, execution.planDigest)}\n`;
  if (values.json) out.info(shown);
  else out.line(shown);

  if (values.digest !== undefined) {
    if (!execution.planDigest.startsWith(values.digest)) {
      throw new UserError(
        'APPROVAL_PLAN_MISMATCH',
        `the plan of ${id} has digest ${execution.planDigest.slice(0, 12)}…, not ${values.digest}; review the plan above and vote again`,
      );
    }
  } else if (!values.yes) {
    if (!process.stdin.isTTY) {
      throw new UserError(
        'USAGE',
        `confirm the plan shown above: run this in a terminal, or add --yes or --digest ${execution.planDigest.slice(0, 12)}`,
      );
    }
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    const answer = await rl.question(`${decision} this plan? Type "yes" to send your vote: `);
    rl.close();
    if (answer.trim().toLowerCase() !== 'yes') {
      out.info('nothing was sent; your vote is not recorded');
      return 1;
    }
  }

  const { approval } = await api.call('vote', {
    params: { id },
    body: { decision, planDigest: execution.planDigest, ...(values.comment ? { comment: values.comment } : {}) },
  });
  if (values.json) {
    out.json({ executionId: id, planDigest: execution.planDigest, approval });
    return 0;
  }
  out.line(
    approval.status === 'approved'
      ? `approved by ${neutralize(approval.approvedBy.join(', '))} — ${id} is running; follow it with: mechanic status ${id} --wait`
      : approval.status === 'pending'
        ? `approval recorded; ${approval.missing} more needed`
        : `rejected — ${id} will not run`,
  );
  return 0;
}
