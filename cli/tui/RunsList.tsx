import { useEffect, useMemo, useState } from 'react';
import { Box, Text } from 'ink';
import { useKeys } from './keyboard.tsx';
import type { ApiClient } from '../../src/api/client.ts';
import { toProblem, type Problem } from './errors.ts';
import { Notice } from './Notice.tsx';
import { inInbox, isApprover } from './run-model.ts';
import { useLatest } from './use-latest.ts';
import { STATUS_LOOK, tone } from './theme.ts';
import { fit, inert, shortTime } from './text.ts';
import type { ExecutionSummary, Me, ScreenProps } from './types.ts';

export interface RunsListProps extends ScreenProps {
  readonly api: ApiClient;
  readonly me: Me;
  /** `mine`: the runs I requested; `inbox`: other people's runs waiting for approval. */
  readonly mode: 'mine' | 'inbox';
  readonly changes: number;
  readonly onOpen: (executionId: string) => void;
}

/** My runs (reopen any), or the runs waiting for my approval, refreshed on every live event. */
export function RunsList({ api, me, mode, changes, onOpen, width, height, active }: RunsListProps) {
  const [all, setAll] = useState<readonly ExecutionSummary[] | undefined>();
  const [problem, setProblem] = useState<Problem | undefined>();
  const [cursor, getCursor, setCursor] = useLatest(0);
  const [reloads, setReloads] = useState(0);

  useEffect(() => {
    let live = true;
    api
      .call('listExecutions', { query: { limit: 200 } })
      .then(({ executions }) => {
        if (!live) return;
        setAll(executions);
        setProblem(undefined);
      })
      .catch((e: unknown) => live && setProblem(toProblem(e)));
    return () => {
      live = false;
    };
  }, [api, changes, reloads]);

  const runs = useMemo(
    () => (all ?? []).filter((e) => (mode === 'mine' ? e.operator === me.id : inInbox(e, me))),
    [all, mode, me],
  );
  const at = Math.min(cursor, Math.max(0, runs.length - 1));

  useKeys(
    (input, key) => {
      const at = Math.min(getCursor(), Math.max(0, runs.length - 1));
      if (key.upArrow || input === 'k') setCursor(Math.max(0, at - 1));
      else if (key.downArrow || input === 'j') setCursor(Math.min(runs.length - 1, at + 1));
      else if (input === 'r') setReloads((n) => n + 1);
      else if (key.return && runs[at]) onOpen(runs[at].id);
    },
    { isActive: active },
  );

  const rows = Math.max(1, height - 2 - (problem ? 2 : 0));
  const start = Math.max(0, Math.min(at - rows + 1, runs.length - rows));
  const canApprove = isApprover(me);
  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Notice problem={problem} width={width} />
      <Text color={tone('dim')} wrap="truncate-end">
        {mode === 'mine'
          ? `runs you requested, newest first${all ? ` (${runs.length})` : ' — loading…'}`
          : canApprove
            ? `other people's runs waiting for approval${all ? ` (${runs.length})` : ' — loading…'}; your own never appear here`
            : 'you are not an approver: runs waiting for approval are listed, but you cannot vote'}
      </Text>
      {all && runs.length === 0 ? (
        <Text color={tone('dim')}>
          {mode === 'mine' ? 'none yet: launch one from the catalog (1)' : 'nothing waits for you'}
        </Text>
      ) : null}
      {runs.slice(start, start + rows).map((e, i) => {
        const selected = start + i === at;
        const look = STATUS_LOOK[e.status];
        const who = mode === 'inbox' ? ` by ${inert(e.operator)}` : '';
        return (
          <Text key={e.id} inverse={selected} wrap="truncate-end">
            {selected ? '›' : ' '} {inert(e.id).padEnd(14)}{' '}
            {fit(`${inert(e.runbookName)} v${e.runbookVersion}`, 18).padEnd(18)}{' '}
            <Text color={tone(look.tone)}>{`${look.glyph} ${look.label}`.padEnd(19)}</Text> {shortTime(e.createdAt)}
            {who} {fit(inert(e.reason), Math.max(0, width - 70))}
          </Text>
        );
      })}
    </Box>
  );
}
