import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config.ts';
import { isMechanicError } from '../../src/core/errors.ts';
import { TERMINAL_STATUSES } from '../../src/core/execution.ts';
import type { ApiClient } from '../../src/api/client.ts';
import { connectApi } from '../api.ts';
import { formatAudit, formatExecution, formatPlan } from '../format.ts';
import { out } from '../output.ts';
import { startStack, throwawayStackEnv } from '../../src/embedded/stack.ts';

/**
 * `mechanic demo`: the whole story on a throwaway stack of its own (temporary folder, free
 * ports), printed as it happens, then torn down.
 */
export async function run(): Promise<number> {
  const home = await mkdtemp(path.join(tmpdir(), 'mechanic-demo-'));
  // Settings of a real deployment in this shell must not leak into the throwaway stack.
  const env = await throwawayStackEnv(home, { minMs: 250, maxMs: 1000 });
  const config = loadConfig(env);
  out.line('Starting a throwaway mechanic stack (Temporal dev server, devfleet, worker, API)…');
  const stack = await startStack(config, { progress: (l) => out.info(`  · ${l}`) }, env);
  try {
    await story(config);
  } finally {
    await stack.stop();
    await rm(home, { recursive: true, force: true });
  }
  return 0;
}

async function story(config: ReturnType<typeof loadConfig>): Promise<void> {
  const as = (user: string): Promise<ApiClient> => connectApi(config, user);
  const alice = await as('alice');
  const bob = await as('bob');
  const dave = await as('dave');

  out.line('\n1. alice (operator) launches deploy-web v1.4.2 on the web fleet:');
  const launched = await alice.call('launch', {
    body: {
      runbook: 'deploy-web',
      params: { release: 'v1.4.2', note: 'login fix' },
      reason: 'ship the login fix (demo)',
    },
  });
  const id = launched.executionId;
  out.line(indent(`${id}\n${formatPlan(launched.plan, launched.planDigest)}`));

  out.line('\n2. alice tries to approve her own change:');
  try {
    await alice.call('vote', { params: { id }, body: { decision: 'approve', planDigest: launched.planDigest } });
    out.line(indent('!! accepted — this should never happen'));
  } catch (e) {
    if (!isMechanicError(e)) throw e;
    out.line(indent(`refused (${e.code}): ${e.message}`));
  }

  out.line('\n3. bob (approver) reviews the same plan digest and approves:');
  const { approval } = await bob.call('vote', {
    params: { id },
    body: { decision: 'approve', planDigest: launched.planDigest, comment: 'looks right' },
  });
  out.line(indent(`approval is now ${approval.status}`));

  out.line('\n4. mechanic gets scoped STS credentials and runs each step through SSM:');
  let view;
  for (;;) {
    ({ execution: view } = await alice.call('getExecution', { params: { id } }));
    if (TERMINAL_STATUSES.has(view.status)) break;
    await sleep(500);
  }
  out.line(indent(formatExecution(view)));

  out.line('\n5. dave (auditor) reads the audit trail and verifies the hash chain:');
  const { records } = await dave.call('listAudit', { query: { executionId: id } });
  out.line(indent(formatAudit(records)));
  const { verdict } = await dave.call('verifyAudit');
  out.line(
    indent(
      verdict.ok ? `chain intact: ${verdict.count} records` : `chain BROKEN at #${verdict.seq}: ${verdict.reason}`,
    ),
  );
  out.line(`\nDone: ${id} ${view.status}.`);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `   ${l}`)
    .join('\n');
}
