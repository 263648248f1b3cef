import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import type { Browser } from '../helpers/browser.ts';
import { PLAN_DIGEST, runEvents, startWebUi, type WebUi } from '../helpers/web-ui.ts';

/**
 * A run's page in the web UI says what the step language did (issue 9), as mechanic plan and
 * mechanic status do: a skipped step is one line with why, never a script that reads as if it ran;
 * a retried step shows each attempt; a step allowed to fail says the run went on past it.
 */
describe('the step language on a run’s page', () => {
  let ui: WebUi;
  let dave: Browser;
  let alice: Browser;
  const SKIP_WHY = 'mode is "quick", and this step runs only when mode is "full"';

  /** A stored run of three steps: `first` skipped, `second` retried once and then fine, `third` failed and allowed to. */
  const storeRun = async (id: string) => {
    const at = '2026-11-21T10:00:00.000Z';
    const events = runEvents({ id, runbook: 'deploy-web', operator: 'alice', at, targets: ['i-0abc'], end: 'pending' });
    const plan = events[0]!.data['plan'] as { steps: Record<string, unknown>[] };
    plan.steps = [
      { name: 'first', script: 'echo NEVER-SENT', timeoutSeconds: 60, condition: 'mode is "full"', skipped: SKIP_WHY },
      { name: 'second', script: 'echo second', timeoutSeconds: 60, retries: 2, retryDelaySeconds: 5 },
      { name: 'third', script: 'echo third', timeoutSeconds: 60, continueOnError: true },
    ];
    let n = 100;
    const t = (s: number) => new Date(Date.parse(at) + s * 1000).toISOString();
    const ev = (type: NewAuditEvent['type'], data: Record<string, unknown>): NewAuditEvent => ({
      eventId: `${id}:${n++}:${type}`,
      executionId: id,
      type,
      actor: 'system',
      at: t(n),
      data,
    });
    const instance = (step: string, index: number, attempt: number | undefined, ok: boolean) =>
      ev('step.instance', {
        step,
        index,
        phase: 'main',
        ...(attempt !== undefined ? { attempt } : {}),
        commandId: `cmd-${step}-${attempt ?? 1}`,
        instanceId: 'i-0abc',
        status: ok ? 'Success' : 'Failed',
        statusDetails: ok ? 'Success' : 'Failed',
        responseCode: ok ? 0 : 1,
        stdout: '',
        stderr: '',
        outputSha256: 'f'.repeat(64),
      });
    const ref = (step: string, index: number, attempt?: number) => ({
      step,
      index,
      phase: 'main',
      ...(attempt !== undefined ? { attempt } : {}),
      commandId: `cmd-${step}-${attempt ?? 1}`,
    });
    events.push(
      { ...ev('approval.granted', { planDigest: PLAN_DIGEST(id) }), actor: 'bob' },
      ev('credentials.issued', {
        accessKeyId: 'ASIATESTKEY0000002',
        expiration: t(900),
        policyDigest: 'e'.repeat(64),
        roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
        reason: 'approved',
      }),
      ev('execution.running', { approvedBy: ['bob'] }),
      ev('step.skipped', { step: 'first', index: 0, phase: 'main', reason: SKIP_WHY }),
      ev('step.started', ref('second', 1, 1)),
      instance('second', 1, 1, false),
      ev('step.completed', { ...ref('second', 1, 1), ok: false, retrying: true }),
      ev('step.started', ref('second', 1, 2)),
      instance('second', 1, 2, true),
      ev('step.completed', { ...ref('second', 1, 2), ok: true }),
      ev('step.started', ref('third', 2)),
      instance('third', 2, undefined, false),
      ev('step.completed', { ...ref('third', 2), ok: false, continuedOnError: true }),
      ev('execution.completed', { failedSteps: ['third'] }),
    );
    for (const e of events) await ui.audit.append(e);
  };

  beforeAll(async () => {
    ui = await startWebUi();
    await storeRun('mx-ctrl0001');
    dave = await ui.signIn('dave');
    alice = await ui.signIn('alice');
  }, 180_000);
  afterAll(async () => {
    await ui?.close();
  });

  const page = async (id: string) => {
    const res = await dave.request(`${ui.origin}/ui/runs/${id}`);
    expect(res.status).toBe(200);
    // Entities decoded, so the assertions read as the page does.
    return (await res.text())
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, '&');
  };

  test('a skipped step is one line saying why, and its script is not shown', async () => {
    const html = await page('mx-ctrl0001');
    expect(html).toContain(`skipped, never sent: ${SKIP_WHY}`);
    expect(html).not.toContain('NEVER-SENT');
  });

  test('the plan says a step’s condition, retries and continueOnError', async () => {
    const html = await page('mx-ctrl0001');
    expect(html).toContain('if it fails, sent again up to 2 times, 5 s apart, to the instances it failed on');
    expect(html).toContain('a failure does not stop the run (continueOnError)');
  });

  test('each attempt of a retried step is numbered, and the failed one says it is sent again', async () => {
    const html = await page('mx-ctrl0001');
    expect(html).toContain('Step second sent (attempt 1 of 3)');
    expect(html).toContain('Step second (attempt 1 of 3) failed');
    expect(html).toContain('It is sent again after its pause.');
    expect(html).toContain('Step second sent (attempt 2 of 3)');
    expect(html).toContain('Step second (attempt 2 of 3) succeeded');
    expect(html).toMatch(/second: succeeded — attempt 2 of 3/);
  });

  test('a step allowed to fail says the run went on past it', async () => {
    const html = await page('mx-ctrl0001');
    expect(html).toContain('The run went on past it (continueOnError).');
    expect(html).toMatch(/third: failed — failed, and the run went on \(continueOnError\)/);
    expect(html).toContain('Steps that failed and were allowed to (continueOnError): third');
  });

  test('a reader who may export the log gets a link to the run’s evidence pack', async () => {
    // The store signs a checkpoint at a run's end, so it covers this run. (The download itself, with
    // a runbook the registry holds, is in the browser test, web-ui-browser.test.ts.)
    expect(await page('mx-ctrl0001')).toContain(
      '<a href="/ui/runs/mx-ctrl0001/pack" id="pack-link" download="">Download the evidence pack</a>',
    );
  });

  test('until a signed checkpoint covers the run’s last record there is no pack link, only the note', async () => {
    // A run still waiting: its records come after the checkpoint signed at mx-ctrl0001's end.
    const id = 'mx-ctrl0002';
    const at = '2026-11-21T11:00:00.000Z';
    for (const e of runEvents({
      id,
      runbook: 'deploy-web',
      operator: 'alice',
      at,
      targets: ['i-0abc'],
      end: 'pending',
    })) {
      await ui.audit.append(e);
    }
    const waiting = await page(id);
    expect(waiting).not.toContain('pack-link');
    expect(waiting).not.toContain(`/ui/runs/${id}/pack`);
    expect(waiting).toContain(
      '<p class="muted" id="pack-note">The evidence pack can be downloaded once a signed checkpoint covers the run\'s last record (within a minute).</p>',
    );
    // Another run's end signs a checkpoint over these records; a record after it is not covered yet.
    await storeRun('mx-ctrl0003');
    await ui.audit.append({
      eventId: `${id}:vote`,
      executionId: id,
      type: 'approval.granted',
      actor: 'bob',
      at: '2026-11-21T11:01:00.000Z',
      data: { planDigest: PLAN_DIGEST(id) },
    });
    const partly = await page(id);
    expect(partly).not.toContain('pack-link');
    expect(partly).toContain('id="pack-note"');
    // Its end is signed in the same transaction, and the link takes the note's place.
    await ui.audit.append({
      eventId: `${id}:end`,
      executionId: id,
      type: 'execution.cancelled',
      actor: 'alice',
      at: '2026-11-21T11:05:00.000Z',
      data: {},
    });
    const ended = await page(id);
    expect(ended).toContain(`<a href="/ui/runs/${id}/pack" id="pack-link" download="">Download the evidence pack</a>`);
    expect(ended).not.toContain('pack-note');
  });

  test('a reader who may not export the log sees no pack link', async () => {
    const res = await alice.request(`${ui.origin}/ui/runs/mx-ctrl0001`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).not.toContain('pack-link');
    expect(html).not.toContain('pack-note');
  });
});
