import { loadConfig } from '../../src/config.ts';
import type { ApprovalState } from '../../src/core/approval.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import { UserError } from '../../src/core/errors.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { formatPlan } from '../format.ts';
import { out } from '../output.ts';

export const approve = (argv: string[]) => vote('approve', argv);
export const reject = (argv: string[]) => vote('reject', argv);

/**
 * Votes on the plan the voter is shown: the digest sent with the vote is the one just fetched
 * and printed, so an approval can never attach to a plan its approver did not see.
 */
async function vote(decision: 'approve' | 'reject', argv: string[]): Promise<number> {
  const usage = `mechanic ${decision} <execution> [--comment text] [--as user] [--json]`;
  const { values, positionals } = parse(
    argv,
    { comment: { type: 'string', short: 'm' }, as: { type: 'string' }, json: { type: 'boolean' } },
    usage,
  );
  const [id, ...extra] = positionals;
  if (!id || extra.length) throw new UserError('USAGE', `name exactly one execution; usage: ${usage}`);
  if (decision === 'reject' && !values.comment)
    throw new UserError('USAGE', 'say why you reject it: add --comment "reason"');
  const api = await connectApi(loadConfig(), values.as);
  const { execution } = await api.request<{ execution: ExecutionView }>(
    'GET',
    `/api/executions/${encodeURIComponent(id)}`,
  );
  const { approval } = await api.request<{ approval: ApprovalState }>(
    'POST',
    `/api/executions/${encodeURIComponent(id)}/votes`,
    {
      decision,
      planDigest: execution.planDigest,
      ...(values.comment ? { comment: values.comment } : {}),
    },
  );
  if (values.json) {
    out.json({ executionId: id, approval });
    return 0;
  }
  // The plan the vote was bound to, shown once the vote is in (a refusal stays one sentence).
  out.line(
    `${decision === 'approve' ? 'approved' : 'rejected'} this plan:\n${formatPlan(execution.plan, execution.planDigest)}\n`,
  );
  out.line(
    approval.status === 'approved'
      ? `approved by ${approval.approvedBy.join(', ')} — ${id} is running; follow it with: mechanic status ${id}`
      : approval.status === 'pending'
        ? `approval recorded; ${approval.missing} more needed`
        : `rejected — ${id} will not run`,
  );
  return 0;
}
