import { useMemo, useState } from 'react';
import { Box, Text } from 'ink';
import { useKeys } from './keyboard.tsx';
import type { ApiClient } from '../../src/api/client.ts';
import { toProblem, type Problem } from './errors.ts';
import type { launchBody } from './form-model.ts';
import { Notice } from './Notice.tsx';
import { useLatest } from './use-latest.ts';
import { planLines } from './plan-lines.ts';
import { Scroller, scrollKey } from './Scroller.tsx';
import { tone } from './theme.ts';
import type { PlanInfo, ScreenProps } from './types.ts';

export interface PlanReviewProps extends ScreenProps {
  readonly api: ApiClient;
  readonly body: ReturnType<typeof launchBody>;
  readonly plan: PlanInfo;
  readonly onBack: () => void;
  /** `changed` names what the server planned differently at submit from what was reviewed. */
  readonly onLaunched: (executionId: string, changed: readonly string[]) => void;
}

/**
 * The dry-run plan, exactly as approvers will see it. Enter asks once more; `y` submits it.
 * The server plans again at submit (new execution id and time), so the digest approvers vote on
 * is the one the run view shows.
 */
export function PlanReview({ api, body, plan, onBack, onLaunched, width, height, active }: PlanReviewProps) {
  const lines = useMemo(() => planLines(plan, undefined), [plan]);
  const [top, getTop, setTop] = useLatest(0);
  const [confirming, getConfirming, setConfirming] = useLatest(false);
  const [sending, getSending, setSending] = useLatest(false);
  const [problem, setProblem] = useState<Problem | undefined>();
  const paneHeight = Math.max(3, height - 3 - (problem ? 2 : 0));

  useKeys(
    (input, key) => {
      if (getSending()) return;
      if (getConfirming()) {
        if (input === 'y' || input === 'Y') {
          setSending(true);
          setConfirming(false);
          api
            .call('launch', { body })
            .then((launched) => onLaunched(launched.executionId, planChanges(plan, launched.plan)))
            .catch((e: unknown) => {
              setSending(false);
              setProblem(toProblem(e));
            });
        } else setConfirming(false);
        return;
      }
      if (key.escape || input === 'q') return onBack();
      if (key.return) return setConfirming(true);
      const next = scrollKey(getTop(), lines.length, paneHeight, input, key);
      if (next !== undefined) setTop(next);
    },
    { isActive: active },
  );

  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Text bold>Plan review — this is what approvers will see. Nothing has started.</Text>
      <Scroller lines={lines} top={top} height={paneHeight} width={width} />
      <Notice problem={problem} width={width} />
      {sending ? (
        <Text color={tone('info')}>submitting…</Text>
      ) : confirming ? (
        <Text inverse bold>
          Submit this plan for approval? y = submit, any other key = not yet
        </Text>
      ) : (
        <Text color={tone('dim')}>Enter: submit for approval · q/Esc: back to the form</Text>
      )}
    </Box>
  );
}

/**
 * What differs between the reviewed dry run and the plan the server started (it plans again at
 * submit: an instance may have gone offline meanwhile). Ids and times always differ; these must not.
 */
export function planChanges(reviewed: PlanInfo, started: PlanInfo): string[] {
  const changes: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (!same(reviewed.targets, started.targets)) changes.push('targets');
  if (!same(reviewed.steps, started.steps) || !same(reviewed.onFailure, started.onFailure)) changes.push('steps');
  if (reviewed.roleArn !== started.roleArn || reviewed.region !== started.region) changes.push('role');
  if (!same(reviewed.params, started.params)) changes.push('parameters');
  if (reviewed.budgetSeconds !== started.budgetSeconds) changes.push('time budget');
  if (!same(reviewed.runbook, started.runbook)) changes.push('runbook version');
  return changes;
}
