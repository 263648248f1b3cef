/** @jsxImportSource hono/jsx */
/**
 * /ui/runs/:id: one run's timeline, read from the audit log alone — the request and its plan (what
 * runs where, as which role, for how long, under which session policy), each vote, the credentials
 * issued, each step per instance with status, exit code and output, the end — and its integrity:
 * the chain proof of its records up to a signed checkpoint (src/core/run-proof.ts), verified here.
 * Everything stored is shown inert (parts.tsx `inert`, then JSX's escaping).
 *
 * A run waiting for the reader's vote shows approve and reject with a comment: the form posts to
 * /ui/runs/:id/vote with the session's CSRF token and goes through the one vote path of every
 * channel (ExecutionService.vote, channel web), so the same rules and policies decide.
 */
import { createHash } from 'node:crypto';
import type { Hono } from 'hono';
import type { AuditRecord } from '../../core/audit-chain.ts';
import { UserError } from '../../core/errors.ts';
import { verifyRunProof, type RunProofVerdict } from '../../core/run-proof.ts';
import { humanTextProblem } from '../../core/text.ts';
import type { Plan } from '../../core/plan.ts';
import { MAX_BATCH, rateControlText } from '../../core/targets.ts';
import { truncationNote } from '../../core/ssm-output.ts';
import { plannedStepAt, plannedStepNotes, stepRunNotes } from '../../core/step-controls-text.ts';
import type { ExecutionView, StepView } from '../../core/execution.ts';
import { LISTED_UNSUCCESSFUL, listedText, summaryText, viewFromAudit } from '../../core/execution-view.ts';
import { isRecordedRefusal } from '../executions.ts';
import { loadRunProof } from '../../store/run-queries.ts';
import { runRecords } from '../../store/run-records.ts';
import { CSRF_FIELD, csrfToken, decide, mayAct, requireAction } from './auth.ts';
import { executionResource } from '../execution-resource.ts';
import type { WebDeps, WebEnv } from './index.ts';
import { Page, html } from './layout.tsx';
import { Status, Time, inert } from './parts.tsx';

const RUN_ID = /^[A-Za-z0-9._:-]{1,200}$/;

function runId(raw: string): string {
  if (!RUN_ID.test(raw)) throw new UserError('USAGE', 'that is not a run id; run ids look like mx-0a1b2c3d4e');
  return raw;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}

/** The plan as an approver must see it before voting: what runs, where, as whom, for how long. */
function PlanView(props: { readonly plan: Plan; readonly planDigest: string }) {
  const p = props.plan;
  const policyDigest = createHash('sha256').update(p.sessionPolicy).digest('hex');
  return (
    <section aria-labelledby="plan-h">
      <h2 id="plan-h">Plan</h2>
      <dl class="facts">
        <dt>Runbook</dt>
        <dd>
          <a href={`/ui/runbooks/${encodeURIComponent(p.runbook.name)}`}>{inert(p.runbook.name)}</a> version{' '}
          {p.runbook.version} <span class="mono muted">({inert(p.runbook.digest)})</span>
        </dd>
        <dt>Requested by</dt>
        <dd>{inert(p.requester)}</dd>
        <dt>Reason</dt>
        <dd>{inert(p.reason)}</dd>
        <dt>Plan digest</dt>
        <dd class="mono">{props.planDigest}</dd>
        <dt>Role</dt>
        <dd class="mono">{inert(p.roleArn)}</dd>
        <dt>Region</dt>
        <dd>{inert(p.region)}</dd>
        <dt>Credential lifetime</dt>
        <dd>{Math.round(p.budgetSeconds / 60)} minutes</dd>
        <dt>Session policy digest</dt>
        <dd class="mono">sha256:{policyDigest}</dd>
        <dt>Approvals needed</dt>
        <dd>
          {p.approval.required}, within {Math.round(p.approval.expiresAfterSeconds / 60)} minutes
        </dd>
        <dt>Parameters</dt>
        <dd>
          {Object.keys(p.params).length === 0 ? (
            <span class="muted">none</span>
          ) : (
            <ul>
              {Object.entries(p.params).map(([k, v]) => (
                <li>
                  <span class="mono">{inert(k)}</span> = <span class="mono">{inert(JSON.stringify(v))}</span>
                  {p.secretParams?.includes(k) ? ' (the name of a secret, read on the instance)' : ''}
                </li>
              ))}
            </ul>
          )}
        </dd>
        <dt>Instances</dt>
        {p.targets.length > MAX_BATCH ? (
          // A run on many instances: the count and the first few, every one a click away.
          <dd>
            {p.targets.length.toLocaleString('en-US')} instances:{' '}
            <span class="mono">
              {inert(
                p.targets
                  .slice(0, 5)
                  .map((t) => t.instanceId)
                  .join(', '),
              )}
            </span>{' '}
            and {(p.targets.length - 5).toLocaleString('en-US')} more
            <details>
              <summary>Every instance</summary>
              <p class="mono">{inert(p.targets.map((t) => t.instanceId).join(', '))}</p>
            </details>
          </dd>
        ) : (
          <dd class="mono">{inert(p.targets.map((t) => t.instanceId).join(', '))}</dd>
        )}
      </dl>
      <table>
        <caption>Steps, in order</caption>
        <thead>
          <tr>
            <th scope="col">Step</th>
            <th scope="col">Script as it runs</th>
            <th scope="col">Timeout</th>
          </tr>
        </thead>
        <tbody>
          {[...p.steps.map((s) => ({ s, phase: '' })), ...p.onFailure.map((s) => ({ s, phase: ' (on failure)' }))].map(
            ({ s, phase }) =>
              // A skipped step is never sent: one line saying why, not a script that reads as if it runs.
              s.skipped !== undefined ? (
                <tr class="skipped">
                  <td>
                    {inert(s.name)}
                    {phase}
                  </td>
                  <td colspan={2}>{inert(plannedStepNotes(s).join('; '))}</td>
                </tr>
              ) : (
                <tr>
                  <td>
                    {inert(s.name)}
                    {phase}
                    {plannedStepNotes(s).map((n) => (
                      <div class="muted">{inert(n)}</div>
                    ))}
                  </td>
                  <td>
                    <pre>{inert(s.script, true)}</pre>
                  </td>
                  <td>
                    {s.timeoutSeconds} s
                    {rateControlText(s, p.targets.length) ? (
                      <div class="muted">{rateControlText(s, p.targets.length)}</div>
                    ) : null}
                  </td>
                </tr>
              ),
          )}
        </tbody>
      </table>
    </section>
  );
}

/**
 * How each step ended, in the words of mechanic status: its status, the attempt of a retried step,
 * a failure the run went past (continueOnError), why a step was skipped.
 */
function StepsView(props: { readonly view: ExecutionView }) {
  const { view } = props;
  if (view.steps.length === 0) return null;
  return (
    <section aria-labelledby="steps-h">
      <h2 id="steps-h">Steps</h2>
      <ol class="steps">
        {view.steps.map((step, index) => {
          const notes = stepRunNotes(step, plannedStepAt(view.plan, index));
          return (
            <li>
              {inert(step.name)}
              {step.phase === 'onFailure' ? ' (on failure)' : ''}: {step.status}
              {notes.length > 0 ? ` — ${inert(notes.join('; '))}` : ''}
              {step.summary ? <StepSummaryView step={step} plan={view.plan} /> : null}
            </li>
          );
        })}
      </ol>
    </section>
  );
}

/**
 * A step on more than 50 instances (sent as batches): its instances counted by status, and only
 * those that did not succeed listed (at most 100), however large the fleet. Every instance's
 * result and output is in the audit log.
 */
function StepSummaryView(props: { readonly step: StepView; readonly plan: Plan }) {
  const { step, plan } = props;
  const summary = step.summary!;
  const names = new Map(plan.targets.map((t) => [t.instanceId, t.name]));
  const unsuccessful = step.instances.filter((i) => i.status !== 'Success');
  const cut = listedText(step);
  return (
    <div class="step-summary">
      <p class="summary">{inert(summaryText(summary))}</p>
      {unsuccessful.length > 0 ? (
        <table class="unsuccessful">
          <caption>Instances of {inert(step.name)} that did not succeed</caption>
          <thead>
            <tr>
              <th scope="col">Instance</th>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Exit code</th>
            </tr>
          </thead>
          <tbody>
            {unsuccessful.map((i) => (
              <tr>
                <td class="mono">{inert(i.instanceId)}</td>
                <td>{inert(names.get(i.instanceId) ?? '')}</td>
                <td>{inert(i.statusDetails || i.status)}</td>
                <td class="mono">{i.responseCode}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {cut ? (
        <p class="muted listed-note">
          {cut}; <code>mechanic audit show {inert(plan.executionId)}</code> has every instance's result.
        </p>
      ) : null}
    </div>
  );
}

/** "attempt 2 of 3" for a record of a retried step; empty for a step that is never retried. */
function attemptOf(d: Readonly<Record<string, unknown>>, plan: Plan | undefined): string {
  if (typeof d['attempt'] !== 'number') return '';
  const planned =
    plan && typeof d['index'] === 'number'
      ? d['phase'] === 'onFailure'
        ? plan.onFailure[d['index']]
        : plan.steps[d['index']]
      : undefined;
  return ` (attempt ${d['attempt']}${planned?.retries !== undefined ? ` of ${planned.retries + 1}` : ''})`;
}

/** One record of the timeline, told in words; the raw record stays in the log and its exports. */
/** The note under output SSM cut at its limit (step.instance's truncatedBySsm), or nothing. */
function cutBySsm(d: Readonly<Record<string, unknown>>, stream: 'stdout' | 'stderr') {
  const cut = d['truncatedBySsm'];
  return Array.isArray(cut) && cut.includes(stream) ? <p class="muted">{truncationNote(stream)}</p> : null;
}

function Entry(props: { readonly r: AuditRecord; readonly plan?: Plan; readonly notShown?: HiddenResults }) {
  const { r } = props;
  const d = r.data;
  const attempt = attemptOf(d, props.plan);
  const head = (what: string) => (
    <p>
      <strong>{what}</strong> <span class="muted">— {inert(r.actor)}, </span>
      <Time iso={r.at} /> <span class="muted mono">#{r.seq}</span>
    </p>
  );
  switch (r.type) {
    case 'execution.requested':
      return <li>{head('Requested')}</li>;
    case 'approval.granted':
    case 'approval.rejected':
      return (
        <li>
          {head(r.type === 'approval.granted' ? 'Approved' : 'Rejected')}
          {str(d['comment']) ? <p>Comment: {inert(d['comment'])}</p> : null}
          <p class="muted mono">plan {inert(d['planDigest'])}</p>
        </li>
      );
    case 'approval.refused':
      return (
        <li>
          {head('Vote refused')}
          <p>{inert(d['reason'])}</p>
        </li>
      );
    case 'credentials.issued':
      return (
        <li>
          {head(
            d['reason'] === 'reissued'
              ? 'Credentials issued again'
              : d['reason'] === 'refreshed'
                ? 'Credentials refreshed'
                : 'Credentials issued',
          )}
          <dl class="facts">
            <dt>Key id</dt>
            <dd class="mono">{inert(d['accessKeyId'])}</dd>
            <dt>Expires</dt>
            <dd>
              <Time iso={str(d['expiration'])} />
            </dd>
            <dt>Session policy digest</dt>
            <dd class="mono">{inert(d['policyDigest'])}</dd>
            <dt>Role</dt>
            <dd class="mono">{inert(d['roleArn'])}</dd>
          </dl>
        </li>
      );
    case 'execution.running':
      return <li>{head('Running')}</li>;
    case 'step.started':
      return (
        <li>
          {head(`Step ${inert(d['step'])} sent${attempt}`)}
          <p class="muted mono">command {inert(d['commandId'])}</p>
        </li>
      );
    case 'step.instance':
      return (
        <li>
          {head(`Step ${inert(d['step'])}${attempt} on ${inert(d['instanceId'])}: ${inert(d['status'])}`)}
          <p>
            Exit code <span class="mono">{str(d['responseCode'])}</span>
            {str(d['statusDetails']) ? ` (${inert(d['statusDetails'])})` : ''}
          </p>
          {str(d['stdout']) ? (
            <details open>
              <summary>Output</summary>
              <pre>{inert(d['stdout'], true)}</pre>
              {cutBySsm(d, 'stdout')}
            </details>
          ) : null}
          {str(d['stderr']) ? (
            <details open>
              <summary>Errors</summary>
              <pre>{inert(d['stderr'], true)}</pre>
              {cutBySsm(d, 'stderr')}
            </details>
          ) : null}
        </li>
      );
    case 'step.completed':
      return (
        <li>
          {head(
            `Step ${inert(d['step'])}${attempt} ${d['ok'] === true ? 'succeeded' : d['cancelled'] === true ? 'cancelled' : 'failed'}`,
          )}
          {str(d['error']) ? <p>{inert(d['error'])}</p> : null}
          {d['ok'] !== true && d['retrying'] === true ? <p>It is sent again after its pause.</p> : null}
          {d['ok'] !== true && d['continuedOnError'] === true ? (
            <p>The run went on past it (continueOnError).</p>
          ) : null}
          {props.notShown && props.notShown.total > 0 ? (
            <p class="muted results-note">
              {`${props.notShown.total.toLocaleString('en-US')} instance results are not listed here (${props.notShown.succeeded.toLocaleString('en-US')} succeeded); `}
              <code>mechanic audit show {inert(r.executionId)}</code> has every one, with its output.
            </p>
          ) : null}
        </li>
      );
    case 'step.skipped':
      return (
        <li>
          {head(`Step ${inert(d['step'])} skipped`)}
          <p>{inert(d['reason'])}</p>
        </li>
      );
    case 'execution.completed':
    case 'execution.failed':
    case 'execution.expired':
    case 'execution.cancelled':
    case 'execution.rejected':
      return (
        <li>
          {head(`Ended: ${r.type.slice('execution.'.length)}`)}
          {str(d['reason']) ? <p>{inert(d['reason'])}</p> : null}
          {Array.isArray(d['failedSteps']) && d['failedSteps'].length > 0 ? (
            <p>
              Steps that failed and were allowed to (continueOnError): {inert(d['failedSteps'].map(str).join(', '))}
            </p>
          ) : null}
        </li>
      );
    default:
      return (
        <li>
          {head(inert(r.type))}
          {str(d['reason']) ? <p>{inert(d['reason'])}</p> : null}
        </li>
      );
  }
}

function ProofView(props: { readonly verdict: RunProofVerdict | undefined }) {
  const v = props.verdict;
  return (
    <section aria-labelledby="proof-h">
      <h2 id="proof-h">Integrity</h2>
      {v === undefined ? (
        <p>This run has no records in the log.</p>
      ) : !v.ok ? (
        <p class="bad" role="alert" id="proof-result">
          The proof does not verify ({v.check}): {v.reason}. Run <code>mechanic audit verify</code> to find the first
          broken record.
        </p>
      ) : v.checkpoint === null ? (
        <p class="warn" id="proof-result">
          The {v.runRecords} records of this run (#{v.from}–#{v.to}) link in the hash chain, but no signed checkpoint
          covers them yet; one is signed at the run's end and at least every minute.
        </p>
      ) : (
        <div id="proof-result">
          <p class="ok">
            Verified: {v.covered} of the run's {v.runRecords} records are in the hash chain up to record #
            {v.checkpoint.seq}, whose checkpoint is signed by a trusted key.
            {v.uncovered.length > 0 ? ` ${v.uncovered.length} later records are not covered by a checkpoint yet.` : ''}
          </p>
          <dl class="facts">
            <dt>Records checked</dt>
            <dd>
              #{v.from} to #{v.to} (every link recomputed)
            </dd>
            <dt>Checkpoint</dt>
            <dd>
              record #{v.checkpoint.seq}, signed <Time iso={v.checkpoint.at} />
            </dd>
            <dt>Head hash</dt>
            <dd class="mono">{v.checkpoint.hash}</dd>
            <dt>Key id</dt>
            <dd class="mono">{v.checkpoint.keyId}</dd>
          </dl>
        </div>
      )}
    </section>
  );
}

/**
 * The run's evidence pack (/ui/runs/:id/pack, the file `mechanic audit pack` writes), once a signed
 * checkpoint covers the run's end; until then, when it will be.
 */
function PackLink(props: { readonly id: string; readonly verdict: RunProofVerdict | undefined }) {
  const v = props.verdict;
  if (v === undefined || !v.ok) return null;
  if (v.checkpoint === null || v.uncovered.length > 0) {
    return (
      <p class="muted" id="pack-note">
        The evidence pack can be downloaded once a signed checkpoint covers the run's last record (within a minute).
      </p>
    );
  }
  return (
    <p>
      <a href={`/ui/runs/${encodeURIComponent(props.id)}/pack`} id="pack-link" download>
        Download the evidence pack
      </a>{' '}
      — one file that <code>mechanic audit verify-pack</code> checks offline with only the public key.
    </p>
  );
}

/** The instance results of a step the timeline leaves out: how many, and how many of them succeeded. */
interface HiddenResults {
  readonly total: number;
  readonly succeeded: number;
}

/**
 * The records the timeline shows. A run on more than 50 instances would list every instance's
 * result (10,000 for a fleet-wide step): its timeline shows the results that did not succeed, at
 * most 100 per step, and each step.completed record says how many it left out. Smaller runs show
 * every record, as always.
 */
function timeline(
  records: readonly AuditRecord[],
  plan: Plan,
): { readonly r: AuditRecord; readonly notShown?: HiddenResults }[] {
  if (plan.targets.length <= MAX_BATCH) return records.map((r) => ({ r }));
  const out: { r: AuditRecord; notShown?: HiddenResults }[] = [];
  // Per step (phase and index), since its last step.completed record.
  const shown = new Map<string, number>();
  const hidden = new Map<string, { total: number; succeeded: number }>();
  for (const r of records) {
    const key = `${str(r.data['phase'])}:${str(r.data['index'])}`;
    if (r.type === 'step.instance') {
      const ok = r.data['status'] === 'Success';
      const n = shown.get(key) ?? 0;
      if (!ok && n < LISTED_UNSUCCESSFUL) {
        shown.set(key, n + 1);
        out.push({ r });
      } else {
        const h = hidden.get(key) ?? { total: 0, succeeded: 0 };
        hidden.set(key, { total: h.total + 1, succeeded: h.succeeded + (ok ? 1 : 0) });
      }
      continue;
    }
    if (r.type === 'step.completed') {
      const h = hidden.get(key);
      shown.delete(key);
      hidden.delete(key);
      out.push(h ? { r, notShown: h } : { r });
      continue;
    }
    out.push({ r });
  }
  return out;
}

export function runPage(app: Hono<WebEnv>, deps: WebDeps): void {
  app.get('/ui/runs/:id', async (c) => {
    const id = runId(c.req.param('id'));
    const summary = await deps.audit.getExecution(id);
    await requireAction(c, 'readRun', {
      kind: 'execution',
      id,
      ...(summary ? { requester: summary.operator, targets: summary.targets } : {}),
    });
    const records = await runRecords(deps.audit, id);
    const view = viewFromAudit(records);
    if (!summary || !view) throw new UserError('EXECUTION_NOT_FOUND', `there is no run ${id} in the log`);
    const proof = await loadRunProof(deps.db, id);
    const verdict = proof ? verifyRunProof(proof, deps.trustedKeys) : undefined;
    const user = c.get('user');
    // Which votes the reader may cast, and if not, why: shown instead of the buttons, never a dead
    // button. Asked with the facts the vote itself is decided on (the runbook's approval groups and
    // risk, who approved so far as which group), so a runbook's own rules hide what they would refuse.
    let voteNote: string | undefined;
    const decisions: ('approve' | 'reject')[] = [];
    if (view.status === 'awaiting_approval' && view.approval.status === 'pending') {
      const resource = executionResource(id, view);
      if (view.plan.requester === user.id) voteNote = 'You requested this run, and nobody approves their own change.';
      else if (view.votes.some((v) => v.approver === user.id)) voteNote = 'You have already voted on this run.';
      else {
        const approve = decide(c, 'approve', resource);
        if (approve.allow) decisions.push('approve');
        if (decide(c, 'reject', resource).allow) decisions.push('reject');
        if (!approve.allow) voteNote = `You cannot approve this run: ${approve.reason}.`;
      }
    }
    const mayVote = decisions.length > 0;
    // The evidence pack holds other runs' records too (the chain proof), so it asks exportAudit.
    const mayExport = await mayAct(c, 'exportAudit', { kind: 'audit' });
    const vote = c.req.query('voted');
    return html(
      c,
      <Page title={`Run ${id}`} user={user} path="/ui/runs" live={`/ui/runs/${encodeURIComponent(id)}/events`}>
        {vote === 'approve' || vote === 'reject' ? (
          <p class="notice" role="status">
            Your {vote === 'approve' ? 'approval' : 'rejection'} was recorded.
          </p>
        ) : null}
        <dl class="facts">
          <dt>Status</dt>
          <dd>
            <Status status={summary.status} />
          </dd>
          <dt>Approvals</dt>
          <dd>
            {summary.approvals.length > 0 ? inert(summary.approvals.join(', ')) : 'none yet'} (
            {view.plan.approval.required} needed)
          </dd>
          <dt>Requested</dt>
          <dd>
            <Time iso={summary.createdAt} />
          </dd>
          <dt>Finished</dt>
          <dd>
            <Time iso={summary.finishedAt} />
          </dd>
        </dl>
        {mayVote ? (
          <section aria-labelledby="vote-h" class="notice">
            <h2 id="vote-h">Your vote</h2>
            <p>
              Read the plan below first: your vote counts only for plan{' '}
              <span class="mono">{view.planDigest.slice(0, 12)}…</span>.
            </p>
            <form method="post" action={`/ui/runs/${encodeURIComponent(id)}/vote`}>
              <input type="hidden" name={CSRF_FIELD} value={csrfToken(c)} />
              <input type="hidden" name="planDigest" value={view.planDigest} />
              <div class="field">
                <label for="comment">Comment (optional)</label>
                <textarea id="comment" name="comment" rows={2} cols={60} maxlength={500}></textarea>
              </div>
              {voteNote ? <p id="vote-note">{voteNote} You may still reject it.</p> : null}
              <p>
                {decisions.includes('approve') ? (
                  <button type="submit" name="decision" value="approve">
                    Approve
                  </button>
                ) : null}{' '}
                {decisions.includes('reject') ? (
                  <button type="submit" name="decision" value="reject" class="danger">
                    Reject
                  </button>
                ) : null}
              </p>
            </form>
          </section>
        ) : voteNote ? (
          <p class="notice" id="vote-note">
            {voteNote}
          </p>
        ) : null}
        <PlanView plan={view.plan} planDigest={view.planDigest} />
        <StepsView view={view} />
        <section aria-labelledby="timeline-h">
          <h2 id="timeline-h">Timeline</h2>
          <ol class="timeline">
            {timeline(records, view.plan).map(({ r, notShown }) => (
              <Entry r={r} plan={view.plan} {...(notShown ? { notShown } : {})} />
            ))}
          </ol>
        </section>
        <ProofView verdict={verdict} />
        {mayExport ? <PackLink id={id} verdict={verdict} /> : null}
      </Page>,
    );
  });

  app.post('/ui/runs/:id/vote', async (c) => {
    const id = runId(c.req.param('id'));
    const form = await c.req.parseBody();
    const decision = form['decision'];
    if (decision !== 'approve' && decision !== 'reject') {
      throw new UserError('USAGE', 'the vote must be approve or reject; use the buttons on the run page');
    }
    await requireAction(c, decision, { kind: 'execution', id });
    const planDigest = typeof form['planDigest'] === 'string' ? form['planDigest'] : '';
    if (!/^[0-9a-f]{64}$/.test(planDigest)) {
      throw new UserError('USAGE', 'the vote names no plan digest; open the run page and vote from there');
    }
    const comment = typeof form['comment'] === 'string' ? form['comment'].trim() : '';
    if (comment.length > 500) throw new UserError('USAGE', 'the comment is longer than 500 characters; shorten it');
    const problem = comment ? humanTextProblem('the comment', comment) : undefined;
    if (problem) throw new UserError('USAGE', problem);
    try {
      await deps.executions.vote(
        c.get('user'),
        id,
        { decision, planDigest, ...(comment ? { comment } : {}) },
        { channel: 'web' },
      );
    } catch (e) {
      // The vote path records its own refusals; the page only tells the reader.
      if (isRecordedRefusal(e)) c.set('refusalRecorded', true);
      throw e;
    }
    return c.redirect(`/ui/runs/${encodeURIComponent(id)}?voted=${decision}`, 303);
  });
}
