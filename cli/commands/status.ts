import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config.ts';
import { TERMINAL_STATUSES } from '../../src/core/execution.ts';
import { UserError } from '../../src/core/errors.ts';
import type { ApiClient } from '../../src/api/client.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { formatExecution } from '../format.ts';
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
  else out.line(formatExecution(view));
  return 0;
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
