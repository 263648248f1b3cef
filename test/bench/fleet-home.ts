/**
 * Shared by the fleet benches: an embedded stack's home prepared with a fleet of our choosing
 * (the stack writes its default fleet only when none is there), a folder with the bench's own
 * runbooks, and one approved run driven through the API to its end.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectApi } from '../../cli/api.ts';
import type { loadConfig } from '../../src/config.ts';
import { defaultFleetConfig, type FleetConfig } from '../../src/devfleet/config.ts';
import { writePrivateFile } from '../../src/host.ts';

export interface RootKeys {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * Writes devfleet's root keys and fleet file under `home` as the stack would, with `extra` on top
 * of the demo fleet (e.g. more instances, light instances), before the stack's first start.
 */
export async function prepareFleetHome(home: string, extra: Partial<FleetConfig>): Promise<RootKeys> {
  const root: RootKeys = {
    accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
  };
  await writePrivateFile(path.join(home, 'devfleet', 'root.json'), `${JSON.stringify(root)}\n`);
  const fleet = { ...defaultFleetConfig(root), seedHosts: true, ...extra };
  await writePrivateFile(path.join(home, 'devfleet', 'fleet.json'), `${JSON.stringify(fleet, null, 2)}\n`);
  return root;
}

/** A folder holding only the given runbooks (file name → YAML), for MECHANIC_RUNBOOKS_DIR. */
export async function runbooksFolder(dir: string, runbooks: Record<string, string>): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, yaml] of Object.entries(runbooks)) await writeFile(path.join(dir, name), yaml);
  return dir;
}

/** Launches `runbook` as alice, approves it as bob and waits until it completes; says why if it does not. */
export async function approvedRun(
  config: ReturnType<typeof loadConfig>,
  runbook: string,
  params: Record<string, string | number | boolean | (string | number | boolean)[]> = {},
  everyMs = 100,
): Promise<{ executionId: string; launchedAt: number; approvedAt: number; completedAt: number }> {
  const alice = await connectApi(config, 'alice');
  const bob = await connectApi(config, 'bob');
  const launchedAt = Date.now();
  const launched = await alice.call('launch', { body: { runbook, params, reason: 'fleet bench' } });
  await bob.call('vote', {
    params: { id: launched.executionId },
    body: { decision: 'approve', planDigest: launched.planDigest },
  });
  const approvedAt = Date.now();
  for (;;) {
    const { execution } = await alice.call('getExecution', { params: { id: launched.executionId } });
    if (execution.status === 'completed')
      return { executionId: launched.executionId, launchedAt, approvedAt, completedAt: Date.now() };
    if (execution.status !== 'running' && execution.status !== 'awaiting_approval') {
      const dave = await connectApi(config, 'dave');
      const { records } = await dave.call('listAudit', { query: { executionId: launched.executionId } });
      const errors = records.flatMap((e) => ('error' in e.data ? [String(e.data['error'])] : []));
      throw new Error(`bench run ended ${execution.status} (${execution.reason ?? ''}): ${errors.join('; ')}`);
    }
    await sleep(everyMs);
  }
}
