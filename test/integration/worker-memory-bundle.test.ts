/**
 * The workflow bundle that `mechanic bundle` writes (and every worker loads) evaluates the audit
 * vocabulary and zod once per worker, not once per run: evaluated per run, they cost 1.3 MB of the
 * workflow thread's heap for each run the worker keeps, and about 40 ms of that thread for each run
 * it starts or replays. Read through the SDK's own reusable V8 context, loading the real bundle.
 *
 * A preloaded module is shared by every run and deep-frozen by the SDK, and a frozen zod schema
 * cannot be used (zod installs its methods on first use): the second test holds workflow code to
 * the vocabulary's functions and constants it is known to use, each shown to work frozen.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
// The SDK's reusable-context creator and bundle parser, exactly as its worker thread uses them.
import { parseWorkflowCode } from '@temporalio/worker/lib/worker.js';
import { globalHandlers } from '@temporalio/worker/lib/workflow/vm-shared.js';
import { ReusableVMWorkflowCreator } from '@temporalio/worker/lib/workflow/reusable-vm.js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type * as AuditEvents from '../../src/core/audit-events.ts';
import type { Plan } from '../../src/core/plan.ts';
import { PRELOADED_MODULES, writeWorkflowBundle } from '../../src/temporal/worker-main.ts';

const AUDIT_EVENTS = './src/core/audit-events.ts';

/** Names workflow code takes from the audit vocabulary; each is called on the frozen module below. */
const KNOWN_SAFE = ['END_EVENT_OF', 'auditEvent', 'requestedEvent', 'workflowEventId'];

/** Exactly what the SDK's reusable context exposes: modules shared by all runs are found without a run. */
class SharedModules extends ReusableVMWorkflowCreator {
  get(id: string): { exports: Record<string, unknown> } | undefined {
    const cache = (this.context as unknown as { __webpack_module_cache__: Record<string, unknown> })
      .__webpack_module_cache__;
    return cache[id] as { exports: Record<string, unknown> } | undefined;
  }
}

let dir = '';
let code = '';
let modules: SharedModules;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mechanic-worker-memory-'));
  const file = path.join(dir, 'workflow-bundle.js');
  await writeWorkflowBundle(file);
  code = await readFile(file, 'utf8');
  modules = await SharedModules.create(parseWorkflowCode(code, file), 10_000, new Set());
}, 120_000);

afterAll(async () => {
  await modules?.destroy();
  // The creator hooks promises and stack traces process-wide, as in a worker thread of its own.
  globalHandlers.uninstall();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The webpack module ids in the bundle (its relative source paths). */
const moduleIds = () => [...code.matchAll(/^\/\*\*\*\/ "([^"]+)"$/gm)].map((m) => m[1]!);

describe('the workflow bundle', () => {
  test('the audit vocabulary and zod are evaluated once per worker and shared by every run; workflow code is per run', () => {
    expect(PRELOADED_MODULES.map((m) => path.basename(m))).toEqual(['audit-events.ts']);
    const ids = moduleIds();
    const zod = ids.filter((id) => /\/zod\/v4\//.test(id));
    expect(zod.length).toBeGreaterThan(10);
    expect(modules.get(AUDIT_EVENTS)?.exports['auditEvent']).toBeTypeOf('function');
    for (const id of zod) expect(modules.get(id), id).toBeDefined();
    // Workflow code stays per run: its state must never be shared between runs.
    const perRun = ids.filter((id) => id.startsWith('./workflows/'));
    expect(perRun).toContain('./workflows/runbook-execution.ts');
    for (const id of perRun) expect(modules.get(id), id).toBeUndefined();
  });

  test('workflow code takes from the frozen vocabulary only what works frozen', () => {
    // Every name a per-run module reads from the vocabulary: webpack writes `<module var>.<name>`; the
    // module itself handed around (a namespace import) counts as '*', which is never safe.
    const used = new Set<string>();
    for (const id of moduleIds()) {
      if (modules.get(id) !== undefined) continue;
      const start = code.indexOf(`/***/ "${id}"\n`);
      const body = code.slice(start, code.indexOf('\n/***/ },', start));
      for (const m of body.matchAll(/audit_events_ts__WEBPACK_IMPORTED_MODULE_\d+__(?!\s*=)(?:\.(\w+))?/g)) {
        used.add(m[1] ?? '*');
      }
    }
    expect(used.size).toBeGreaterThan(0);
    // A new name here must not parse with a zod schema, directly or inside a function: a frozen
    // schema throws on first use, and in a workflow that is a workflow task failing forever. Check,
    // then add it to KNOWN_SAFE and call it below.
    expect([...used].filter((name) => !KNOWN_SAFE.includes(name))).toEqual([]);

    const vocabulary = modules.get(AUDIT_EVENTS)!.exports as unknown as typeof AuditEvents;
    expect(Object.isFrozen(vocabulary.END_EVENT_OF)).toBe(true);
    expect(vocabulary.END_EVENT_OF.completed).toBe('execution.completed');
    expect(vocabulary.workflowEventId('mx-1', 3, 'execution.running')).toBe('mx-1:0003:execution.running');
    const plan = {
      executionId: 'mx-1',
      requester: 'alice@example.com',
      createdAt: '2026-01-01T00:00:00.000Z',
      runbook: { name: 'r', version: 1 },
      params: {},
      targets: [{ instanceId: 'i-1' }],
      reason: 'why',
    } as unknown as Plan;
    expect(vocabulary.requestedEvent({ plan, planDigest: 'd' })).toMatchObject({
      eventId: 'mx-1:0000:execution.requested',
      type: 'execution.requested',
      data: { targets: ['i-1'], planDigest: 'd' },
    });
    expect(
      vocabulary.auditEvent('execution.completed', {
        eventId: 'e',
        executionId: 'mx-1',
        actor: 'mechanic',
        at: 'now',
        data: {},
      }),
    ).toMatchObject({ type: 'execution.completed', eventId: 'e' });
  });
});
