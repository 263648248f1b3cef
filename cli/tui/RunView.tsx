import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { Box, Text, type Key } from 'ink';
import { useKeys } from './keyboard.tsx';
import type { ApiClient } from '../../src/api/client.ts';
import type { AuditRecordInfo } from '../../src/api/schemas.ts';
import { humanTextProblem } from '../../src/core/text.ts';
import { editText } from './edit.ts';
import { useLatest } from './use-latest.ts';
import { toProblem, type Problem } from './errors.ts';
import { useFollow, type Link } from './follow.ts';
import { Notice } from './Notice.tsx';
import { OutputPane, outputLines, outputPaneRows, type InstanceOutput } from './OutputPane.tsx';
import { planLines } from './plan-lines.ts';
import { ProgressBar } from './ProgressBar.tsx';
import { cancelRight, isFinal, stepTimes, viewFromRecords, voteRight } from './run-model.ts';
import { Scroller, scrollKey } from './Scroller.tsx';
import { TextDialog } from './TextDialog.tsx';
import { RISK_TONE, riskOf, riskText } from './risk.ts';
import { STATUS_LOOK, STEP_LOOK, instanceTone, tone } from './theme.ts';
import { duration, fit, inert } from './text.ts';
import { plannedStepAt, stepRunNotes } from '../../src/core/step-controls-text.ts';
import { LISTED_UNSUCCESSFUL, listedText, summaryText } from '../../src/core/execution-view.ts';
import { MAX_BATCH } from '../../src/core/targets.ts';
import type { Execution, Me, ScreenProps } from './types.ts';

export interface RunViewProps extends ScreenProps {
  readonly api: ApiClient;
  readonly me: Me;
  readonly executionId: string;
  readonly onBack: () => void;
  /** For tests: the clock. */
  readonly now?: () => number;
  /** Tells the app which keys are in front (for the footer). */
  readonly onMode?: (mode: 'run' | 'output' | 'dialog' | 'plan') => void;
  /** What the started plan changed from the reviewed one (launch from the TUI only). */
  readonly changedSinceReview?: readonly string[];
  /** The run's live stream link, shown in the header. */
  readonly onLink?: (link: Link) => void;
}

type Dialog =
  | { readonly kind: 'vote'; readonly decision: 'approve' | 'reject'; readonly comment: string; readonly top: number }
  | { readonly kind: 'cancel'; readonly reason: string };

type Row =
  | { readonly kind: 'step'; readonly index: number }
  /** A step on more than 50 instances: its instances counted by status (under its step row). */
  | { readonly kind: 'summary'; readonly index: number }
  | { readonly kind: 'instance'; readonly index: number; readonly instanceId: string };

const COMMENT_MAX = 500;

/**
 * One run, live: waiting for approval (who approved, how many more, time left), then each step
 * with a bar over its instances and each instance's status, elapsed time, any instance's output,
 * cancel with a reason, and a summary at the end (read from the API, as `mechanic status` prints it).
 */
export function RunView(props: RunViewProps) {
  const { api, me, executionId, onBack, width, height, active, setTyping } = props;
  const now = props.now ?? Date.now;
  const [fetched, setFetched] = useState<Execution | undefined>();
  const [final, setFinal] = useState<Execution | undefined>();
  const [records, setRecords] = useState<readonly AuditRecordInfo[]>([]);
  const [problem, setProblem] = useState<Problem | undefined>(() =>
    props.changedSinceReview?.length
      ? {
          code: 'PLAN_CHANGED',
          message: `the server planned this run with other ${props.changedSinceReview.join(', ')} than the plan you reviewed`,
          next: 'press p to read the plan approvers will see, or c to cancel it',
        }
      : undefined,
  );
  const [cursor, getCursor, setCursor] = useLatest(0);
  const [output, getOutput, setOutput] = useLatest<InstanceOutput | undefined>(undefined);
  const [outputTop, getOutputTop, setOutputTop] = useLatest(0);
  const [dialog, getDialog, setDialog] = useLatest<Dialog | undefined>(undefined);
  const [showPlan, getShowPlan, setShowPlan] = useLatest(false);
  const [planTop, getPlanTop, setPlanTop] = useLatest(0);
  const [busy, setBusy] = useState(false);
  const [, setTick] = useState(0);
  const [reloads, setReloads] = useState(0);
  const pending = useRef<AuditRecordInfo[]>([]);
  const flush = useRef<NodeJS.Timeout | undefined>(undefined);

  useEffect(() => {
    let live = true;
    api
      .call('getExecution', { params: { id: executionId } })
      .then(({ execution }) => {
        if (!live) return;
        setFetched(execution);
        if (isFinal(execution)) setFinal(execution);
        // A load clears a load error, never the notice that the plan changed since review.
        setProblem((p) => (p?.code === 'PLAN_CHANGED' ? p : undefined));
      })
      .catch((e: unknown) => live && setProblem(toProblem(e)));
    return () => {
      live = false;
    };
  }, [api, executionId, reloads]);

  // Records arrive in bursts; they are applied together at most every 50 ms, so the screen is
  // redrawn once per burst, not once per record.
  const onRecord = useCallback((r: AuditRecordInfo) => {
    pending.current.push(r);
    flush.current ??= setTimeout(() => {
      flush.current = undefined;
      const batch = pending.current;
      pending.current = [];
      setRecords((rs) => [...rs, ...batch.filter((b) => !rs.some((x) => x.seq === b.seq))]);
    }, 50);
  }, []);
  useEffect(() => () => clearTimeout(flush.current), []);
  const link = useFollow(api, { executionId }, onRecord);
  useEffect(() => {
    props.onLink?.(link);
  }, [link]);
  useEffect(() => {
    if (link.state === 'failed') setProblem({ code: link.code, message: link.message });
  }, [link]);

  const streamed = useMemo(() => viewFromRecords(records), [records]);
  const view = final ?? streamed ?? fetched;
  const times = useMemo(() => stepTimes(records), [records]);

  // At the end, the summary is read once more from the API: exactly what `mechanic status` shows.
  const ended = view !== undefined && isFinal(view);
  useEffect(() => {
    if (!ended || final) return undefined;
    let live = true;
    api
      .call('getExecution', { params: { id: executionId } })
      .then(({ execution }) => live && isFinal(execution) && setFinal(execution))
      .catch((e: unknown) => live && setProblem(toProblem(e)));
    return () => {
      live = false;
    };
  }, [api, executionId, ended, final]);

  // A clock for "time left" and "elapsed" while the run is alive; not a poll: nothing is fetched.
  useEffect(() => {
    if (ended) return undefined;
    const t = setInterval(() => setTick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [ended]);

  const rows = useMemo((): Row[] => {
    if (!view) return [];
    const out: Row[] = [];
    // A run on more than 50 instances lists, per step, its counts and the instances that did not
    // succeed (at most 100): never a row per host of a fleet.
    const large = view.plan.targets.length > MAX_BATCH;
    view.steps.forEach((s, index) => {
      out.push({ kind: 'step', index });
      if (s.status === 'pending' || s.status === 'skipped') return;
      if (!large && !s.summary) {
        for (const t of view.plan.targets) out.push({ kind: 'instance', index, instanceId: t.instanceId });
        return;
      }
      if (s.summary) out.push({ kind: 'summary', index });
      for (const i of s.instances.filter((r) => r.status !== 'Success').slice(0, LISTED_UNSUCCESSFUL)) {
        out.push({ kind: 'instance', index, instanceId: i.instanceId });
      }
    });
    return out;
  }, [view]);
  const at = Math.min(cursor, Math.max(0, rows.length - 1));

  const mode = output ? 'output' : dialog ? 'dialog' : showPlan ? 'plan' : 'run';
  useEffect(() => {
    props.onMode?.(mode);
  }, [mode]);
  // Layout effects: the app knows a field has the keyboard before the next key is read.
  useLayoutEffect(() => {
    setTyping(active && dialog !== undefined);
  }, [active, dialog, setTyping]);
  useLayoutEffect(() => () => setTyping(false), [setTyping]);

  const dialogProblem = (d: Dialog): string | undefined => {
    if (d.kind === 'cancel') {
      if (d.reason.trim().length < 3) return 'say why you cancel it (3 characters at least)';
      return humanTextProblem('the reason', d.reason.trim());
    }
    if (d.decision === 'reject' && d.comment.trim().length === 0) return 'say why you reject it';
    if (d.comment.length > COMMENT_MAX) return `the comment is longer than ${COMMENT_MAX} characters`;
    return d.comment ? humanTextProblem('the comment', d.comment) : undefined;
  };

  const send = (d: Dialog) => {
    if (!view || dialogProblem(d) !== undefined) return;
    setBusy(true);
    const done = (p: Problem | undefined) => {
      setBusy(false);
      setDialog(undefined);
      setProblem(p);
    };
    if (d.kind === 'cancel') {
      api
        .call('cancel', { params: { id: executionId }, body: { reason: d.reason.trim() } })
        .then(({ status }) => done({ code: 'OK', tone: 'info', message: `cancel sent; the run is ${status}` }))
        .catch((e: unknown) => done(toProblem(e)));
      return;
    }
    api
      .call('vote', {
        params: { id: executionId },
        body: {
          decision: d.decision,
          planDigest: view.planDigest,
          ...(d.comment.trim() ? { comment: d.comment.trim() } : {}),
        },
      })
      .then(({ approval }) =>
        done({
          code: 'OK',
          tone: 'info',
          message:
            approval.status === 'approved'
              ? `approved by ${approval.approvedBy.map(inert).join(', ')}; the run starts`
              : approval.status === 'pending'
                ? `your approval is recorded; ${approval.missing} more needed`
                : 'rejected; the run will not start',
        }),
      )
      .catch((e: unknown) => done(toProblem(e)));
  };

  const lines = useMemo(() => (view ? planLines(view.plan, view.planDigest) : []), [view?.planDigest]);

  const shownOutput = useMemo(() => (output ? outputLines(output) : []), [output]);
  // One owner for every key of this screen and the panes it opens (output, plan, dialogs): a single
  // handler, reading the newest state, that never changes identity. With a handler per pane, a q
  // that closed the output pane could also reach the run view (both were subscribed while ink
  // swapped them) and back out of it too; and a key right behind another acted on stale state.
  const onKey = useRef<(input: string, key: Key) => void>(() => undefined);
  onKey.current = (input, key) => {
    if (busy) return;
    const output = getOutput();
    if (output) {
      if (key.escape || input === 'q' || key.return) {
        setOutputTop(0);
        return setOutput(undefined);
      }
      const next = scrollKey(getOutputTop(), outputLines(output).length, outputPaneRows(height), input, key);
      if (next !== undefined) setOutputTop(next);
      return;
    }
    const dialog = getDialog();
    const at = Math.min(getCursor(), Math.max(0, rows.length - 1));
    const planTop = getPlanTop();
    if (dialog) {
      if (key.escape) return setDialog(undefined);
      if (key.return) return send(dialog);
      if (dialog.kind === 'vote' && (key.upArrow || key.downArrow || key.pageUp || key.pageDown)) {
        const next = scrollKey(dialog.top, lines.length, Math.max(3, height - 9), '', key);
        if (next !== undefined) setDialog({ ...dialog, top: next });
        return;
      }
      const field = dialog.kind === 'cancel' ? dialog.reason : dialog.comment;
      const next = editText(field, input, key, COMMENT_MAX + 1);
      if (next === undefined) return;
      setDialog(dialog.kind === 'cancel' ? { ...dialog, reason: next } : { ...dialog, comment: next });
      return;
    }
    if (getShowPlan()) {
      if (key.escape || input === 'q' || input === 'p') return setShowPlan(false);
      const next = scrollKey(planTop, lines.length, height - 2, input, key);
      if (next !== undefined) setPlanTop(next);
      return;
    }
    if (key.escape || input === 'q') return onBack();
    if (input === 'r') return setReloads((n) => n + 1);
    if (!view) return;
    if (key.upArrow || input === 'k') return setCursor(Math.max(0, at - 1));
    if (key.downArrow || input === 'j') return setCursor(Math.min(rows.length - 1, at + 1));
    if (input === 'p') return setShowPlan(true);
    if (input === 'a' || input === 'x') {
      const right = voteRight(view, me);
      if (!right.can) return setProblem({ code: 'NO', tone: 'info', message: `you cannot vote: ${right.why}` });
      return setDialog({ kind: 'vote', decision: input === 'a' ? 'approve' : 'reject', comment: '', top: 0 });
    }
    if (input === 'c') {
      const right = cancelRight(view, me);
      if (!right.can) return setProblem({ code: 'NO', tone: 'info', message: `you cannot cancel it: ${right.why}` });
      return setDialog({ kind: 'cancel', reason: '' });
    }
    if (key.return || input === 'o') {
      const row = rows[at];
      if (row?.kind !== 'instance') return;
      const step = view.steps[row.index];
      const found = step?.instances.find((i) => i.instanceId === row.instanceId);
      // A step sent as batches keeps outputs out of the workflow's view: the stream's records have them.
      const recorded = streamed?.steps[row.index]?.instances.find(
        (i) => i.instanceId === row.instanceId && i.outputSha256 !== '',
      );
      const result = found && found.outputSha256 === '' && recorded ? recorded : found;
      if (!step || !result) {
        return setProblem({ code: 'NO', tone: 'info', message: 'this instance has no output yet' });
      }
      setOutputTop(0);
      setOutput({
        step: inert(step.name),
        instance: targetName(view, row.instanceId),
        status: result.status,
        responseCode: result.responseCode,
        stdout: result.stdout,
        stderr: result.stderr,
        ...(result.truncatedBySsm ? { truncatedBySsm: result.truncatedBySsm } : {}),
      });
    }
  };
  const handleKey = useCallback((input: string, key: Key) => onKey.current(input, key), []);
  useKeys(handleKey, { isActive: active });

  if (output) {
    return <OutputPane output={output} lines={shownOutput} top={outputTop} width={width} height={height} />;
  }
  if (!view) {
    return (
      <Box flexDirection="column" width={width} height={height}>
        <Text>Run {inert(executionId)}</Text>
        {problem ? <Notice problem={problem} width={width} /> : <Text color={tone('dim')}>loading…</Text>}
      </Box>
    );
  }
  if (showPlan) {
    return (
      <Box flexDirection="column" width={width} height={height}>
        <Text bold>Plan of {view.executionId} — p/q/Esc to close</Text>
        <Scroller lines={lines} top={planTop} height={height - 1} width={width} />
      </Box>
    );
  }

  const look = STATUS_LOOK[view.status];
  const risk = riskOf(view.plan.runbook);
  const nowMs = now();
  const createdMs = Date.parse(view.plan.createdAt);
  const votes = view.votes.filter((v) => v.decision === 'approve').map((v) => inert(v.approver));
  const right = voteRight(view, me);
  const header = (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        <Text bold>{view.executionId}</Text> {view.plan.runbook.name} v{view.plan.runbook.version} ·{' '}
        <Text {...(risk ? { color: tone(RISK_TONE[risk]) } : {})}>{riskText(risk)}</Text> ·{' '}
        <Text color={tone(look.tone)} bold>
          {look.glyph} {look.label}
        </Text>{' '}
        · by {inert(view.plan.requester)}
      </Text>
      <Text wrap="truncate-end" color={tone('dim')}>
        reason: {inert(view.plan.reason)} · plan {view.planDigest.slice(0, 12)}
      </Text>
    </Box>
  );

  let status: ReactNode = null;
  if (view.status === 'awaiting_approval' && view.approval.status === 'pending') {
    const left = (createdMs + view.plan.approval.expiresAfterSeconds * 1000 - nowMs) / 1000;
    status = (
      <Box flexDirection="column">
        <Text wrap="truncate-end">
          <Text color={tone('warn')}>Waiting for approval:</Text> {duration(left)} left · {view.approval.missing} more
          needed of {view.plan.approval.required} · approved by {votes.length ? votes.join(', ') : 'nobody yet'}
        </Text>
        <Text wrap="truncate-end" color={tone(right.can ? 'info' : 'dim')}>
          {right.can
            ? 'a: approve  x: reject  (the plan is shown before your vote is sent)'
            : `No vote from you: ${right.why}.`}
        </Text>
      </Box>
    );
  } else if (isFinal(view)) {
    const main = view.steps.filter((s) => s.phase === 'main');
    const ok = main.filter((s) => s.status === 'succeeded').length;
    const last = records.at(-1);
    const took = last ? (Date.parse(last.at) - createdMs) / 1000 : undefined;
    status = (
      <Box flexDirection="column" borderStyle="single" paddingX={1}>
        <Text wrap="truncate-end">
          <Text bold color={tone(look.tone)}>
            {look.glyph} {look.label}
          </Text>{' '}
          · {ok} of {main.length} steps succeeded
          {view.approval.status === 'approved'
            ? ` · approved by ${view.approval.approvedBy.map(inert).join(', ')}`
            : ''}
          {took !== undefined ? ` · ${duration(took)}` : ''}
        </Text>
        {view.reason ? <Text wrap="truncate-end">why: {inert(view.reason)}</Text> : null}
        {view.approval.status === 'rejected' ? (
          <Text wrap="truncate-end">
            rejected by {inert(view.approval.by)}
            {view.approval.comment ? `: ${inert(view.approval.comment)}` : ''}
          </Text>
        ) : null}
      </Box>
    );
  } else if (view.status === 'running') {
    status = (
      <Text wrap="truncate-end">
        <Text color={tone('info')}>Running</Text> · approved by {votes.join(', ') || '—'} · c: cancel
      </Text>
    );
  }

  const reserved =
    2 + (isFinal(view) ? 4 : 2) + (problem ? 2 : 0) + (dialog ? (dialog.kind === 'vote' ? height - 4 : 5) : 0);
  const listRows = Math.max(2, height - reserved);
  const start = Math.max(0, Math.min(at - Math.floor(listRows / 2), rows.length - listRows));
  const barWidth = width >= 100 ? 20 : 10;

  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      {header}
      {status}
      {dialog?.kind !== 'vote' ? (
        <Box flexDirection="column" height={listRows} overflow="hidden">
          {rows.slice(start, start + listRows).map((row, i) => {
            const selected = start + i === at;
            const step = view.steps[row.index]!;
            if (row.kind === 'step') {
              const sl = STEP_LOOK[step.status];
              const t = times.get(row.index);
              const elapsed =
                t?.start !== undefined ? ((t.end ?? (isFinal(view) ? t.start : nowMs)) - t.start) / 1000 : undefined;
              const done = step.summary ? step.summary.total : step.instances.length;
              // Its attempt, a failure the run went past, why it was skipped (step controls).
              const notes = stepRunNotes(step, plannedStepAt(view.plan, row.index));
              return (
                <Text key={`s${row.index}`} inverse={selected} wrap="truncate-end">
                  {selected ? '›' : ' '}
                  <Text color={tone(sl.tone)}>{sl.glyph}</Text>{' '}
                  {fit(`${step.phase === 'onFailure' ? 'on failure: ' : ''}${inert(step.name)}`, 24).padEnd(24)}{' '}
                  <ProgressBar done={done} total={view.plan.targets.length} width={barWidth} look={sl.tone} />{' '}
                  {step.status}
                  {notes.length ? ` · ${inert(notes.join(' · '))}` : ''}
                  {elapsed !== undefined ? ` ${duration(elapsed)}` : ''}
                </Text>
              );
            }
            if (row.kind === 'summary') {
              const cut = step.summary ? listedText(step) : undefined;
              return (
                <Text key={`c${row.index}`} inverse={selected} wrap="truncate-end">
                  {selected ? '›' : ' '}
                  {'    '}
                  {step.summary ? inert(summaryText(step.summary)) : ''}
                  {cut ? <Text color={tone('dim')}> · {cut}</Text> : null}
                </Text>
              );
            }
            const result = step.instances.find((r) => r.instanceId === row.instanceId);
            return (
              <Text key={`i${row.index}:${row.instanceId}`} inverse={selected} wrap="truncate-end">
                {selected ? '›' : ' '}
                {'    '}
                {fit(targetName(view, row.instanceId), 28).padEnd(28)}{' '}
                {result ? (
                  <Text color={tone(instanceTone(result.status))}>
                    {result.status} (exit {result.responseCode}){selected ? ' · Enter: output' : ''}
                  </Text>
                ) : (
                  <Text color={tone('dim')}>{step.status === 'running' ? 'in progress…' : '—'}</Text>
                )}
              </Text>
            );
          })}
        </Box>
      ) : null}
      <Notice problem={problem} width={width} />
      {dialog?.kind === 'cancel' ? (
        <TextDialog
          title={`Cancel ${view.executionId}? ${view.status === 'running' ? 'The running step is stopped on every host; nothing after it runs.' : 'It will never run.'}`}
          label="reason"
          value={dialog.reason}
          problem={dialog.reason ? dialogProblem(dialog) : undefined}
          hint={busy ? 'sending…' : 'Enter: cancel the run · Esc: keep it'}
          width={width}
        />
      ) : null}
      {dialog?.kind === 'vote' ? (
        <Box flexDirection="column">
          <Text bold>
            You are {dialog.decision === 'approve' ? 'approving' : 'rejecting'} exactly this plan (digest{' '}
            {view.planDigest.slice(0, 12)}…):
          </Text>
          <Box borderStyle="single" flexDirection="column">
            <Scroller lines={lines} top={dialog.top} height={Math.max(3, height - 12)} width={width - 2} />
          </Box>
          <TextDialog
            title={dialog.decision === 'approve' ? 'Approve — a comment is optional' : 'Reject — say why'}
            label="comment"
            value={dialog.comment}
            problem={dialog.comment || dialog.decision === 'reject' ? dialogProblem(dialog) : undefined}
            hint={
              busy
                ? 'sending…'
                : `Enter: send your ${dialog.decision === 'approve' ? 'approval' : 'rejection'} · ↑↓: scroll the plan · Esc: cancel`
            }
            width={width}
          />
        </Box>
      ) : null}
    </Box>
  );
}

function targetName(view: Execution, instanceId: string): string {
  const t = view.plan.targets.find((x) => x.instanceId === instanceId);
  return t?.name ? `${inert(t.name)} (${inert(instanceId)})` : inert(instanceId);
}
