import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config.ts';
import { TERMINAL_STATUSES, type ExecutionView } from '../../src/core/execution.ts';
import { plannedStepAt, stepRunNotes } from '../../src/core/step-controls-text.ts';
import { neutralize } from '../../src/core/text.ts';
import { UserError } from '../../src/core/errors.ts';
import type { ApiClient } from '../../src/api/client.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { MARK, formatExecution } from '../format.ts';
import { out } from '../output.ts';

const USAGE = 'mechanic status <execution> [--wait] [--as user] [--json]';
const ENDINGS = new Set([...TERMINAL_STATUSES].map((s) => `execution.${s}`));
/** How long --wait keeps reconnecting to a stream that dropped before it gives up. */
const RECONNECT_FOR_MS = 5 * 60_000;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { wait: { type: 'boolean', short: 'w' }, as: { type: 'string' }, json: { type: 'boolean' } },
    USAGE,
  );
  const [id, ...extra] = positionals;
  if (!id || extra.length) throw new UserError('USAGE', `name exactly one execution; usage: ${USAGE}`);
  const api = await connectApi(loadConfig(), values.as);
  let { execution: view } = await api.call('getExecution', { params: { id } });
  if (values.wait && !TERMINAL_STATUSES.has(view.status)) {
    await untilEnded(api, id);
    ({ execution: view } = await api.call('getExecution', { params: { id } }));
  }
  if (values.json) out.json(view);
  else out.line(view.plan.targets.length > SUMMARY_OVER ? formatLargeExecution(view) : formatExecution(view));
  return 0;
}

/** Runs on more targets than this are summarised: counts by status and the failures, not every host. */
const SUMMARY_OVER = 50;
/** The most failed instances listed per step in a summary (--json has every one). */
const FAILURES_LISTED = 20;
const t = (value: unknown): string => neutralize(String(value));

/**
 * A run on many instances, readable: the plan with its first targets and their count, then each
 * step with its instances counted by status and its failures listed (the first 20). Outputs are in
 * `mechanic audit`; `--json` has every instance.
 */
export function formatLargeExecution(view: ExecutionView): string {
  const { targets } = view.plan;
  const shown = targets.slice(0, 5).map((x) => (x.name ? `${t(x.name)} (${t(x.instanceId)})` : t(x.instanceId)));
  const head = formatExecution({ ...view, steps: [] })
    .split('\n')
    .map((l) =>
      l.startsWith('targets   ')
        ? `targets   ${targets.length} instances: ${shown.join(', ')}${targets.length > shown.length ? `, and ${targets.length - shown.length} more` : ''}`
        : l,
    );
  const out = [...head];
  for (const [index, step] of view.steps.entries()) {
    const notes = stepRunNotes(step, plannedStepAt(view.plan, index));
    // A step sent as batches carries its counts; its instances are then only the unsuccessful ones.
    const counts = new Map<string, number>(Object.entries(step.summary?.byStatus ?? {}));
    if (!step.summary) {
      for (const i of step.instances) {
        const key = i.statusDetails || i.status;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    const tally = [...counts].map(([k, n]) => `${n} ${t(k)}`).join(', ');
    out.push(
      `${MARK[step.status] ?? '?'} ${step.phase === 'onFailure' ? '[on failure] ' : ''}${t(step.name)}  ${t(step.status)}${tally ? `  (${tally})` : ''}${notes.length ? ` — ${notes.map(t).join('; ')}` : ''}`,
    );
    const failed = step.instances.filter((i) => i.status !== 'Success');
    const unsuccessful = step.summary ? step.summary.total - (step.summary.byStatus['Success'] ?? 0) : failed.length;
    for (const inst of failed.slice(0, FAILURES_LISTED)) {
      out.push(`    ${t(inst.instanceId)}  ${t(inst.statusDetails || inst.status)}  exit ${t(inst.responseCode)}`);
    }
    const listed = Math.min(failed.length, FAILURES_LISTED);
    if (unsuccessful > listed) {
      out.push(`    … and ${unsuccessful - listed} more not successful (mechanic audit has every instance's result)`);
    }
  }
  return out.join('\n');
}

/**
 * Follows the execution's event stream until its final record. A dropped connection is resumed
 * after the last record seen (Last-Event-ID), so nothing is missed and nothing is polled.
 */
async function untilEnded(api: ApiClient, id: string): Promise<void> {
  let after: number | undefined;
  let lostSince: number | undefined;
  for (;;) {
    try {
      for await (const record of api.events({ executionId: id }, after === undefined ? {} : { after })) {
        after = record.seq;
        lostSince = undefined;
        if (ENDINGS.has(record.type)) return;
      }
    } catch (e) {
      if (!(e instanceof UserError) || e.code !== 'SERVER_UNAVAILABLE') throw e;
      lostSince ??= Date.now();
      if (Date.now() - lostSince > RECONNECT_FOR_MS) throw e;
    }
    await sleep(500);
  }
}
