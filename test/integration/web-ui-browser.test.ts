/**
 * The reporting UI in Chromium against the whole embedded stack (`mechanic dev`: Temporal, devfleet,
 * worker, API server, the development provider): an auditor signs in, filters the runs, opens a
 * timeline; an approver approves another person's waiting run on its page, and the run goes on to
 * run on devfleet; an auditor downloads a run's evidence pack and `mechanic audit verify-pack`
 * accepts it with the server's public key; each page passes axe with no serious or critical violation.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

const CHROMIUM = '/usr/bin/chromium';

/** axe's serious and critical findings on the page as it is now, one line each. */
async function seriousViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`);
}

// Skipped only off CI: .ci/run installs Chromium, so there a missing browser fails the launch.
describe.skipIf(!existsSync(CHROMIUM) && !process.env['CI'])('the reporting UI in Chromium', () => {
  let stack: DevStack;
  let browser: Browser;
  let password: string;
  let origin: string;
  let pending: string;
  let done: string;

  const launch = async (reason: string): Promise<string> => {
    const r = await runCli(
      ['launch', 'deploy-web', '--param', 'release=v1.4.2', '--reason', reason, '--as', 'alice', '--json'],
      stack.env,
    );
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { executionId: string }).executionId;
  };

  /** A new browser context signed in as `user`, on `path`. */
  async function signedIn(user: string, target: string): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${origin}${target}`);
    await page.fill('input[name=login]', user);
    await page.fill('input[name=password]', password);
    await Promise.all([page.waitForURL(`${origin}${target}`), page.click('button[type=submit]')]);
    return page;
  }

  beforeAll(async () => {
    stack = await startDevStack();
    origin = stack.info.apiUrl;
    password = (await readFile(path.join(stack.home, 'idp', 'password'), 'utf8')).trim();
    done = await launch('first deploy');
    const ok = await runCli(['approve', done, '--yes', '--as', 'bob'], stack.env);
    expect(ok.code, ok.stderr).toBe(0);
    const waited = await runCli(['status', done, '--wait', '--as', 'alice', '--json'], stack.env);
    expect(waited.code, waited.stderr).toBe(0);
    pending = await launch('second deploy');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
  }, 240_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('an auditor signs in, filters the runs and opens a timeline with its verified proof', async () => {
    const page = await signedIn('dave', '/ui/runs');
    expect(await page.locator('h1').textContent()).toBe('Runs');
    expect(await seriousViolations(page)).toEqual([]);
    // Progressive enhancement: the page follows the event stream and says when something happened.
    await page.locator('.live-note').waitFor();
    expect(await page.locator('.live-note').textContent()).not.toContain('paused');
    await launch('a run that happens while the page is open');
    await page.locator('.live-note', { hasText: /new events? since this page was loaded/ }).waitFor();
    expect(await page.locator('.live-note a').textContent()).toBe('Reload to see them');
    await page.selectOption('#f-status', 'completed');
    await page.fill('#f-runbook', 'deploy-web');
    await Promise.all([page.waitForURL(/status=completed/), page.click('button:has-text("Filter")')]);
    const rows = page.locator(`a[href="/ui/runs/${done}"]`);
    expect(await rows.count()).toBe(1);
    expect(await page.locator(`a[href="/ui/runs/${pending}"]`).count()).toBe(0);
    await Promise.all([page.waitForURL(`${origin}/ui/runs/${done}`), rows.click()]);
    expect(await page.locator('h1').textContent()).toBe(`Run ${done}`);
    const timeline = await page.locator('ol.timeline').textContent();
    expect(timeline).toContain('Approved');
    expect(timeline).toContain('Credentials issued');
    expect(timeline).toContain('Ended: completed');
    expect(await page.locator('#proof-result').textContent()).toMatch(/Verified: \d+ of the run's \d+ records/);
    expect(await seriousViolations(page)).toEqual([]);
    for (const target of ['/ui/runbooks', '/ui/runbooks/deploy-web', '/ui/search?person=alice']) {
      await page.goto(`${origin}${target}`);
      expect(await seriousViolations(page), target).toEqual([]);
    }
  });

  test('an auditor downloads a run’s evidence pack from its page, and it verifies offline with the public key', async () => {
    const page = await signedIn('dave', `/ui/runs/${done}`);
    // The link shows once a signed checkpoint covers the run's end (signed at the end, and at least every minute).
    for (let i = 0; i < 60 && (await page.locator('#pack-link').count()) === 0; i++) {
      expect(await page.locator('#pack-note').count()).toBe(1);
      await page.waitForTimeout(2_000);
      await page.reload();
    }
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#pack-link')]);
    expect(download.suggestedFilename()).toBe(`${done}.evidence-pack.json`);
    const file = path.join(stack.home, 'downloaded.evidence-pack.json');
    await download.saveAs(file);
    const key = await runCli(['audit', 'key', '--json'], stack.env);
    expect(key.code, key.stderr).toBe(0);
    const keyFile = path.join(stack.home, 'audit-public.pem');
    await writeFile(keyFile, (JSON.parse(key.stdout) as { publicKey: string }).publicKey);
    const verified = await runCli(['audit', 'verify-pack', file, '--key', keyFile], stack.env);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/^evidence pack OK\n/);
    // The same file with one byte changed does not verify.
    const text = await readFile(file, 'utf8');
    expect(text).toContain('"first deploy"');
    await writeFile(file, text.replace('"first deploy"', '"first deplay"'));
    const broken = await runCli(['audit', 'verify-pack', file, '--key', keyFile], stack.env);
    expect(broken.code).not.toBe(0);
    expect(broken.stdout).toContain('evidence pack BROKEN');
  }, 240_000);

  test('an approver approves another person’s waiting run on its page, with the plan shown', async () => {
    const page = await signedIn('bob', '/ui/approvals');
    expect(await seriousViolations(page)).toEqual([]);
    await Promise.all([page.waitForURL(`${origin}/ui/runs/${pending}`), page.click(`a[href="/ui/runs/${pending}"]`)]);
    expect(await page.locator('#plan-h').textContent()).toBe('Plan');
    expect(await seriousViolations(page)).toEqual([]);
    await page.fill('#comment', 'looks good from the web');
    await Promise.all([page.waitForURL(/voted=approve/), page.click('button[value=approve]')]);
    expect(await page.locator('.notice[role=status]').textContent()).toContain('Your approval was recorded');
    const waited = await runCli(['status', pending, '--wait', '--as', 'alice', '--json'], stack.env);
    expect(waited.code, waited.stderr).toBe(0);
    const audit = await runCli(['audit', 'list', '--execution', pending, '--as', 'dave', '--json'], stack.env);
    const vote = (JSON.parse(audit.stdout) as { type: string; actor: string; data: { comment?: string } }[]).find(
      (e) => e.type === 'approval.granted',
    );
    expect(vote).toMatchObject({ actor: 'bob', data: { comment: 'looks good from the web' } });
  });

  test('an approver rejects another person’s waiting run on its page with a comment, and it ends rejected', async () => {
    const doomed = await launch('fourth deploy');
    const page = await signedIn('bob', `/ui/runs/${doomed}`);
    await page.fill('#comment', 'not this release');
    await Promise.all([page.waitForURL(/voted=reject/), page.click('button[value=reject]')]);
    expect(await page.locator('.notice[role=status]').textContent()).toContain('Your rejection was recorded');
    const waited = await runCli(['status', doomed, '--wait', '--as', 'alice', '--json'], stack.env);
    expect((JSON.parse(waited.stdout) as { status: string }).status, waited.stderr).toBe('rejected');
    const audit = await runCli(['audit', 'list', '--execution', doomed, '--as', 'dave', '--json'], stack.env);
    const records = JSON.parse(audit.stdout) as { type: string; actor: string; data: { comment?: string } }[];
    expect(records.find((e) => e.type === 'approval.rejected')).toMatchObject({
      actor: 'bob',
      data: { comment: 'not this release' },
    });
    expect(records.map((e) => e.type)).toContain('execution.rejected');
    expect(records.map((e) => e.type)).not.toContain('credentials.issued');
  });

  test('the requester sees why there is nothing to vote on their own run', async () => {
    const other = await launch('third deploy');
    const page = await signedIn('alice', `/ui/runs/${other}`);
    expect(await page.locator('button[value=approve]').count()).toBe(0);
    expect(await page.locator('#vote-note').textContent()).toBe(
      'You requested this run, and nobody approves their own change.',
    );
  });
});
