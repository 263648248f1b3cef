import { useCallback, useEffect, useMemo, useState } from 'react';
import { Box, Text } from 'ink';
import { useKeys } from './keyboard.tsx';
import type { ApiClient } from '../../src/api/client.ts';
import { toProblem, type Problem } from './errors.ts';
import { Notice } from './Notice.tsx';
import { RunbookDetail } from './RunbookDetail.tsx';
import { LOCKED, launchRefusal } from './launch.ts';
import { RISK_TONE, ownersOf, riskOf } from './risk.ts';
import { editText } from './edit.ts';
import { useLatest } from './use-latest.ts';
import { STATUS_LOOK, tone } from './theme.ts';
import { fit, inert, shortTime } from './text.ts';
import type { ExecutionSummary, RunbookInfo, ScreenProps } from './types.ts';

export interface CatalogProps extends ScreenProps {
  readonly api: ApiClient;
  /** Bumped by the app on every live event: the last-run column is read again. */
  readonly changes: number;
  readonly onLaunch: (runbook: RunbookInfo) => void;
}

/**
 * The runbooks: name, version, risk, owners, last run, description; `/` filters; a detail pane for
 * the selected one. A runbook the user may not launch is listed dimmed with a marker, and Enter on
 * it says why in place instead of opening a form the server would refuse.
 */
export function Catalog({ api, changes, onLaunch, width, height, active, setTyping }: CatalogProps) {
  const [runbooks, setRunbooks] = useState<readonly RunbookInfo[] | undefined>();
  const [invalid, setInvalid] = useState<readonly { file: string; error: string }[]>([]);
  const [lastRuns, setLastRuns] = useState<ReadonlyMap<string, ExecutionSummary>>(new Map());
  const [problem, setProblem] = useState<Problem | undefined>();
  const [filter, getFilter, setFilter] = useLatest('');
  const [filtering, getFiltering, setFiltering] = useLatest(false);
  const [cursor, getCursor, setCursor] = useLatest(0);
  const [reloads, setReloads] = useState(0);
  /** Enter was pressed on a runbook the user may not launch: its name and the server's reason. */
  const [refused, setRefused] = useState<{ readonly name: string; readonly reason: string } | undefined>();

  useEffect(() => {
    let live = true;
    api
      .call('listRunbooks')
      .then((r) => {
        if (!live) return;
        setRunbooks(r.runbooks);
        setInvalid(r.invalid);
        setProblem(undefined);
      })
      .catch((e: unknown) => live && setProblem(toProblem(e)));
    return () => {
      live = false;
    };
  }, [api, reloads]);

  useEffect(() => {
    let live = true;
    api
      .call('listExecutions', { query: { limit: 200 } })
      .then(({ executions }) => {
        if (!live) return;
        const last = new Map<string, ExecutionSummary>();
        for (const e of executions) if (!last.has(e.runbookName)) last.set(e.runbookName, e);
        setLastRuns(last);
      })
      .catch(() => undefined); // the catalog is still usable without the last-run column
    return () => {
      live = false;
    };
  }, [api, changes, reloads]);

  const shown = useMemo(() => {
    const f = filter.toLowerCase();
    return (runbooks ?? []).filter((r) => !f || r.name.includes(f) || r.description.toLowerCase().includes(f));
  }, [runbooks, filter]);
  const selected = shown[Math.min(cursor, shown.length - 1)];

  const stopFiltering = useCallback(() => {
    setFiltering(false);
    setTyping(false);
  }, [setTyping, setFiltering]);

  useKeys(
    (input, key) => {
      if (getFiltering()) {
        if (key.return || key.downArrow) return stopFiltering();
        if (key.escape) {
          setFilter('');
          return stopFiltering();
        }
        const next = editText(getFilter(), input, key, 60);
        if (next !== undefined) {
          setFilter(next);
          setCursor(0);
          setRefused(undefined);
        }
        return;
      }
      // A refusal shown in place is about the runbook it was asked of: any other key clears it.
      setRefused(undefined);
      if (input === '/') {
        setFiltering(true);
        setTyping(true);
      } else if (key.escape && filter) setFilter('');
      else if (key.upArrow || input === 'k') setCursor((c) => Math.max(0, c - 1));
      else if (key.downArrow || input === 'j') setCursor((c) => Math.min(shown.length - 1, c + 1));
      else if (input === 'r') setReloads((n) => n + 1);
      else if (key.return) {
        const f = getFilter().toLowerCase();
        const list = (runbooks ?? []).filter(
          (r) => !f || r.name.includes(f) || r.description.toLowerCase().includes(f),
        );
        const chosen = list[Math.min(getCursor(), list.length - 1)];
        const refusal = chosen && launchRefusal(chosen);
        if (chosen && refusal !== undefined) setRefused({ name: chosen.name, reason: refusal });
        else if (chosen) onLaunch(chosen);
      }
    },
    { isActive: active },
  );

  const wide = width >= 110;
  const listWidth = wide ? Math.floor(width * 0.5) : width;
  const ownersWidth = listWidth >= 100 ? 18 : 12;
  const anyLocked = shown.some((r) => launchRefusal(r) !== undefined);
  const listRows = Math.max(
    1,
    (wide ? height - 4 : Math.max(3, Math.min(shown.length, Math.floor(height / 3)))) -
      (anyLocked ? 1 : 0) -
      (refused ? 1 : 0),
  );
  const start = Math.max(0, Math.min(cursor - listRows + 1, shown.length - listRows));
  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Notice problem={problem} width={width} />
      {refused ? (
        <Text color={tone('warn')} wrap="wrap">
          {LOCKED} you may not launch {inert(refused.name)}: {inert(refused.reason)}
        </Text>
      ) : null}
      <Text>
        <Text color={tone('dim')}>filter </Text>
        {filtering || filter ? (
          <Text inverse={filtering}>
            /{filter}
            {filtering ? '▏' : ''}
          </Text>
        ) : (
          <Text color={tone('dim')}>(press / to type)</Text>
        )}
        <Text color={tone('dim')}>
          {'  '}
          {runbooks ? `${shown.length} of ${runbooks.length} runbooks` : 'loading…'}
        </Text>
      </Text>
      <Box flexDirection={wide ? 'row' : 'column'} flexGrow={1}>
        <Box flexDirection="column" width={listWidth} flexShrink={0}>
          {runbooks && shown.length > 0 ? (
            <Text color={tone('dim')} wrap="truncate-end">
              {'  runbook'.padEnd(24)} {'risk'.padEnd(6)} {'owners'.padEnd(ownersWidth)} {'last run'.padEnd(16)}{' '}
              description
            </Text>
          ) : null}
          {runbooks && shown.length === 0 ? <Text color={tone('dim')}>no runbook matches “{filter}”</Text> : null}
          {shown.slice(start, start + listRows).map((r, i) => {
            const at = start + i === Math.min(cursor, shown.length - 1);
            const last = lastRuns.get(r.name);
            const lastText = last ? `${STATUS_LOOK[last.status].glyph} ${shortTime(last.createdAt)}` : 'never run';
            const locked = launchRefusal(r) !== undefined;
            const head = `${at ? '›' : ' '} ${locked ? `${LOCKED} ` : ''}${r.name} v${r.version}`;
            const risk = riskOf(r);
            const owners = ownersOf(r);
            return (
              <Text key={r.name} inverse={at} wrap="truncate-end" {...(locked ? { color: tone('dim') } : {})}>
                {fit(head, 24).padEnd(24)}{' '}
                <Text {...(risk && !locked ? { color: tone(RISK_TONE[risk]) } : {})}>{(risk ?? '?').padEnd(6)}</Text>{' '}
                {fit(owners?.length ? inert(owners.join(',')) : '—', ownersWidth).padEnd(ownersWidth)}{' '}
                {fit(lastText, 16).padEnd(16)} {fit(inert(r.description), listWidth - 51 - ownersWidth)}
              </Text>
            );
          })}
          {anyLocked ? (
            <Text color={tone('dim')} wrap="truncate-end">
              {LOCKED} marks a runbook you may not launch; the detail pane says why
            </Text>
          ) : null}
          {invalid.length > 0 ? (
            <Text color={tone('warn')} wrap="truncate-end">
              {invalid.length} runbook file(s) could not be loaded: {invalid.map((i) => inert(i.file)).join(', ')}
            </Text>
          ) : null}
        </Box>
        {selected ? (
          <Box flexDirection="column" flexGrow={1} overflow="hidden" marginLeft={wide ? 1 : 0} marginTop={wide ? 0 : 1}>
            <RunbookDetail runbook={selected} width={wide ? width - listWidth - 1 : width} />
          </Box>
        ) : null}
      </Box>
    </Box>
  );
}
