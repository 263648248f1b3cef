import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.ts';
import { serializeEvidencePack, type EvidencePack } from '../../src/core/evidence-pack.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import { ENCODING_ENCRYPTED } from '../../src/temporal/codec.ts';
import { Browser } from '../helpers/browser.ts';
import { usersFile, writeOwnerOnly } from '../helpers/claims.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

type JsonPayload = { metadata: Record<string, string>; data: string };

/**
 * Issue 9 items 4 and 6 on the embedded stack (`mechanic dev`): a real run is packed with
 * `mechanic audit pack`, checked offline with `mechanic audit verify-pack` and only the public key, and
 * fails naming what broke after one change to each part; the pack's API route asks for exportAudit.
 * The codec endpoint decrypts a real payload of the run's Temporal history for a token or the Web UI's
 * signed-in browser, refuses everyone else (on the record), grants CORS to the Web UI's origin only, and
 * the dev server's Web UI and the real `temporal` CLI are pointed at it.
 */

const RUNBOOK = `name: pack-run
version: 1
description: Something to run and pack.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
targets:
  tags: { Role: web }
steps:
  - name: hello
    timeoutSeconds: 30
    script: echo hello from the pack test
`;

describe('evidence packs and the codec endpoint on the embedded stack', { timeout: 300_000 }, () => {
  let stack: DevStack;
  let scratch: string;
  let tokens: Record<string, string>;
  let id = '';
  let packFile = '';
  let keyFile = '';
  let pack: EvidencePack;
  const cli = (...args: string[]) => runCli(args, stack.env);
  const api = (route: string, init: RequestInit & { as?: string } = {}) =>
    fetch(`${stack.info.apiUrl}${route}`, {
      ...init,
      headers: {
        ...(init.as ? { authorization: `Bearer ${tokens[init.as]}` } : {}),
        ...(init.headers as Record<string, string> | undefined),
      },
    });
  const allAudit = async (): Promise<AuditRecord[]> => {
    const r = await cli('audit', 'list', '--as', 'dave', '--json');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as AuditRecord[];
  };

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'mechanic-pack-'));
    const users = usersFile({
      alice: ['operator', 'approver'],
      bob: ['approver'],
      dave: ['auditor'],
      erin: ['operator'],
      // An author may read runbooks, but not runs nor the audit log.
      carol: ['author'],
    });
    tokens = Object.fromEntries(users.users.map((u) => [u.id, u.token]));
    const usersPath = path.join(scratch, 'users.json');
    await writeOwnerOnly(usersPath, JSON.stringify(users));
    await writeOwnerOnly(path.join(scratch, 'runbooks', 'pack-run.yaml'), RUNBOOK);
    stack = await startDevStack({
      MECHANIC_HOME: path.join(scratch, 'home'),
      MECHANIC_USERS_FILE: usersPath,
      MECHANIC_RUNBOOKS_DIR: path.join(scratch, 'runbooks'),
    });
    const launched = await cli('launch', 'pack-run', '--reason', 'evidence pack test', '--as', 'alice', '--json');
    expect(launched.stderr).toBe('');
    id = (JSON.parse(launched.stdout) as { executionId: string }).executionId;
    expect((await cli('approve', id, '--yes', '--comment', 'checked the plan', '--as', 'bob')).code).toBe(0);
    const done = await cli('status', id, '--wait', '--as', 'alice', '--json');
    expect((JSON.parse(done.stdout) as ExecutionView).status).toBe('completed');
    packFile = path.join(scratch, 'run.pack.json');
    keyFile = path.join(scratch, 'audit-key.pem');
  }, 600_000);
  afterAll(async () => {
    const code = await stack?.stop();
    await rm(scratch, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  describe('the evidence pack', () => {
    beforeAll(async () => {
      const r = await cli('audit', 'pack', id, '--out', packFile, '--as', 'dave');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^wrote the evidence pack of ${id} to `));
      pack = JSON.parse(await readFile(packFile, 'utf8')) as EvidencePack;
      // The auditor's copy of the public key, as `mechanic audit key` prints it.
      const key = await cli('audit', 'key');
      expect(key.code).toBe(0);
      await writeFile(keyFile, key.stdout.slice(key.stdout.indexOf('-----BEGIN')));
    });

    test('is one canonical, owner-only JSON file holding the run, its runbook version and its votes', async () => {
      const text = await readFile(packFile, 'utf8');
      expect(text).toBe(serializeEvidencePack(pack));
      expect((await stat(packFile)).mode & 0o777).toBe(0o600);
      expect(pack).toMatchObject({ format: 'mechanic-evidence-pack', version: 1, executionId: id, createdBy: 'dave' });
      expect(pack.events.map((e) => e.type)).toEqual(
        expect.arrayContaining([
          'execution.requested',
          'approval.granted',
          'credentials.issued',
          'execution.completed',
        ]),
      );
      expect(pack.events.every((e) => e.executionId === id)).toBe(true);
      expect(pack.runbook).toMatchObject({ name: 'pack-run', version: 1, yaml: RUNBOOK });
      // The digest is the one the plan pinned.
      expect(pack.runbook.digest).toBe((pack.events[0]!.data['runbook'] as { digest: string }).digest);
      expect(pack.votes).toEqual([
        expect.objectContaining({ decision: 'approve', voter: 'bob', comment: 'checked the plan' }),
      ]);
      expect(pack.checkpoint.seq).toBeGreaterThanOrEqual(pack.events.at(-1)!.seq);
    });

    test('verifies offline with only the public key (PEM, or the JSON of audit key --json)', async () => {
      // No server involved: the stack's URL and tokens are withheld from the verifier.
      const offline = { PATH: process.env['PATH'], HOME: scratch, MECHANIC_HOME: path.join(scratch, 'nowhere') };
      const ok = await runCli(['audit', 'verify-pack', packFile, '--key', keyFile], offline);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(ok.stdout).toMatch(/^evidence pack OK\n/);
      expect(ok.stdout).toContain(`${id}: pack-run@1`);
      expect(ok.stdout).toContain('completed');
      expect(ok.stdout).toContain('1 approval(s)');
      expect(ok.stdout).toContain(`verified with the key you gave (${pack.key.keyId})`);
      const json = await cli('audit', 'key', '--json');
      const jsonKey = path.join(scratch, 'audit-key.json');
      await writeFile(jsonKey, json.stdout);
      const viaJson = await runCli(['audit', 'verify-pack', packFile, '--key', jsonKey, '--json'], offline);
      expect(viaJson.code).toBe(0);
      expect(JSON.parse(viaJson.stdout)).toMatchObject({ ok: true, summary: { executionId: id, keySource: 'given' } });
      // Without --key it still checks, against the key in the pack, and says so.
      const noKey = await runCli(['audit', 'verify-pack', packFile], offline);
      expect(noKey.code).toBe(0);
      expect(noKey.stdout).toContain('verified with the key inside the pack');
    });

    const flipHex = (s: string) => s.slice(0, -1) + (s.endsWith('0') ? '1' : '0');
    test.each<[string, (p: EvidencePack) => void, RegExp]>([
      [
        "an event's data",
        (p) => (p.events[0]!.data['reason'] = 'evidence pack tesT'),
        /^evidence pack BROKEN: event #\d+ \(execution\.requested\): hash does not match the record's content/,
      ],
      [
        "an event's hash",
        (p) => (p.events[1]!.hash = flipHex(p.events[1]!.hash)),
        /^evidence pack BROKEN: event #\d+ \(\S+\): hash does not match the record's content/,
      ],
      ['a removed event', (p) => p.events.splice(1, 1), /^evidence pack BROKEN: record #\d+ is missing from the pack/],
      [
        'the checkpoint',
        (p) => (p.checkpoint.hash = flipHex(p.checkpoint.hash)),
        /^evidence pack BROKEN: the checkpoint of #\d+ has a signature that does not match/,
      ],
      [
        'the signature',
        (p) =>
          (p.checkpoint.signature =
            (p.checkpoint.signature.startsWith('A') ? 'B' : 'A') + p.checkpoint.signature.slice(1)),
        /^evidence pack BROKEN: the checkpoint of #\d+ has a signature that does not match/,
      ],
      [
        'the runbook YAML',
        (p) => (p.runbook.yaml = p.runbook.yaml.replace('hello from', 'hellp from')),
        /^evidence pack BROKEN: runbook\.yaml does not read as the runbook version/,
      ],
    ])('one change to %s fails verification, naming what broke', async (_what, edit, expected) => {
      const copy = JSON.parse(await readFile(packFile, 'utf8')) as EvidencePack;
      edit(copy);
      const file = path.join(scratch, 'tampered.pack.json');
      await writeFile(file, serializeEvidencePack(copy));
      const r = await runCli(['audit', 'verify-pack', file, '--key', keyFile], stack.env);
      expect(r.stdout).toMatch(expected);
      expect(r.stdout.trim().split('\n')).toHaveLength(1);
      expect(r.code).toBe(1);
    });

    test('a byte cut from the end of the file fails as not JSON, with no stack trace', async () => {
      const text = await readFile(packFile, 'utf8');
      const file = path.join(scratch, 'cut.pack.json');
      await writeFile(file, text.slice(0, -3));
      const r = await runCli(['audit', 'verify-pack', file, '--key', keyFile], stack.env);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^evidence pack BROKEN: .* is not JSON/);
      expect(r.stderr).toBe('');
    });

    test('the API route asks for exportAudit: no token is 401, a user without it 403 and on the record', async () => {
      expect((await api(`/api/executions/${id}/pack`)).status).toBe(401);
      const refused = await api(`/api/executions/${id}/pack`, { as: 'erin' });
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
      // The log as a whole is refused, so the record names no execution; its path names the run.
      const denial = (await allAudit()).find((r) => r.type === 'access.denied' && r.actor === 'erin');
      expect(denial).toMatchObject({ data: { action: 'exportAudit', path: `/api/executions/${id}/pack` } });
      const cliRefused = await cli('audit', 'pack', id, '--out', path.join(scratch, 'erin.json'), '--as', 'erin');
      expect(cliRefused.code).toBe(1);
      expect(cliRefused.stderr).toMatch(/^mechanic: erin \(operator\) may not export the audit log/);
      await expect(stat(path.join(scratch, 'erin.json'))).rejects.toMatchObject({ code: 'ENOENT' });
      expect((await api('/api/executions/mx-doesnotexist/pack', { as: 'dave' })).status).toBe(404);
    });
  });

  /** A browser signed in to mechanic as `who` through the stack's sign-in provider. */
  const signedIn = async (who: string): Promise<Browser> => {
    const password = (await readFile(path.join(stack.home, 'idp', 'password'), 'utf8')).trim();
    const browser = new Browser();
    const atProvider = await browser.go(`${stack.info.apiUrl}/auth/login?next=${encodeURIComponent('/healthz')}`);
    await browser.go(await browser.signIn(atProvider, who, password));
    expect(browser.cookies.get('mechanic_session')).toBeDefined();
    return browser;
  };

  test("the UI's download is the same pack for an auditor; an operator gets a 403 page, on the record", async () => {
    const dave = await signedIn('dave');
    const res = await dave.request(`${stack.info.apiUrl}/ui/runs/${id}/pack`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${id}.evidence-pack.json"`);
    const file = path.join(scratch, 'from-ui.pack.json');
    await writeFile(file, await res.text());
    const ok = await runCli(['audit', 'verify-pack', file, '--key', keyFile], stack.env);
    expect(ok.stdout).toMatch(/^evidence pack OK\n/);
    expect(ok.code).toBe(0);

    const erin = await signedIn('erin');
    const refused = await erin.request(`${stack.info.apiUrl}/ui/runs/${id}/pack`);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain('may not export the audit log');
    expect((await allAudit()).find((r) => r.type === 'access.denied' && r.data['channel'] === 'web')).toMatchObject({
      actor: 'erin',
      data: { action: 'exportAudit', path: `/ui/runs/${id}/pack` },
    });
  });

  describe('the codec endpoint', () => {
    let encrypted: { metadata: Record<string, string>; data: string };
    const uiOrigin = () => stack.info.temporalUiUrl!;
    const decode = (init: { as?: string; origin?: string; cookie?: string; body?: unknown } = {}) =>
      api('/codec/decode', {
        method: 'POST',
        ...(init.as ? { as: init.as } : {}),
        headers: {
          'content-type': 'application/json',
          'x-namespace': 'default',
          ...(init.origin ? { origin: init.origin } : {}),
          ...(init.cookie ? { cookie: init.cookie } : {}),
        },
        body: JSON.stringify(init.body ?? { payloads: [encrypted] }),
      });

    beforeAll(async () => {
      // The run's input as the Temporal server holds it: encrypted.
      const connection = await Connection.connect({ address: stack.info.temporalAddress });
      try {
        const history = await new Client({ connection }).workflow.getHandle(id).fetchHistory();
        const input = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
        const b64 = (u: Uint8Array | null | undefined) => Buffer.from(u ?? []).toString('base64');
        encrypted = {
          metadata: Object.fromEntries(Object.entries(input.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
          data: b64(input.data),
        };
      } finally {
        await connection.close();
      }
      expect(Buffer.from(encrypted.metadata['encoding']!, 'base64').toString()).toBe(ENCODING_ENCRYPTED);
      expect(Buffer.from(encrypted.data, 'base64').includes(id)).toBe(false);
    });

    test("decodes a real payload of the run's history to its plaintext for a token with readRun", async () => {
      const res = await decode({ as: 'dave' });
      expect(res.status).toBe(200);
      const { payloads } = (await res.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
      expect(Buffer.from(payloads[0]!.metadata['encoding']!, 'base64').toString()).toBe('json/plain');
      const input = JSON.parse(Buffer.from(payloads[0]!.data, 'base64').toString()) as {
        plan: { executionId: string };
      };
      expect(input.plan.executionId).toBe(id);
      // Encode goes the other way, with the same key: what it makes decodes again.
      const enc = await api('/codec/encode', {
        method: 'POST',
        as: 'dave',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ payloads }),
      });
      const round = await decode({ as: 'dave', body: await enc.json() });
      expect(((await round.json()) as { payloads: unknown[] }).payloads).toEqual(payloads);
    });

    test('no token or a wrong one is 401; a user without readRun is 403, on the record', async () => {
      expect((await decode()).status).toBe(401);
      expect((await decode({ as: 'nobody' })).status).toBe(401);
      const res = await api('/codec/decode', {
        method: 'POST',
        headers: { authorization: 'Bearer mk_not-a-token', 'content-type': 'application/json' },
        body: JSON.stringify({ payloads: [encrypted] }),
      });
      expect(res.status).toBe(401);
      const refused = await decode({ as: 'carol' });
      expect(refused.status).toBe(403);
      const body = (await refused.json()) as { error: { code: string }; payloads?: unknown };
      expect(body.error.code).toBe('FORBIDDEN');
      expect(body.payloads).toBeUndefined();
      expect((await allAudit()).find((r) => r.type === 'access.denied' && r.actor === 'carol')).toMatchObject({
        data: { action: 'readRun', path: '/codec/decode' },
      });
    });

    test('bad input is 400 with one sentence: another namespace, a body that is not payloads, an altered payload', async () => {
      const other = await api('/codec/decode', {
        method: 'POST',
        as: 'dave',
        headers: { 'content-type': 'application/json', 'x-namespace': 'elsewhere' },
        body: JSON.stringify({ payloads: [encrypted] }),
      });
      expect(other.status).toBe(400);
      expect(((await other.json()) as { error: { message: string } }).error.message).toMatch(
        /serves the Temporal namespace default, not elsewhere/,
      );
      expect((await decode({ as: 'dave', body: { payloads: 'x' } })).status).toBe(400);
      const data = Buffer.from(encrypted.data, 'base64');
      data[20] = data[20]! ^ 1;
      const altered = await decode({
        as: 'dave',
        body: { payloads: [{ ...encrypted, data: data.toString('base64') }] },
      });
      expect(altered.status).toBe(400);
      expect(((await altered.json()) as { error: { message: string } }).error.message).toMatch(/failed authentication/);
    });

    test("CORS: the Web UI's origin is granted with credentials, any other origin gets no grant", async () => {
      const preflight = (origin: string) =>
        api('/codec/decode', {
          method: 'OPTIONS',
          headers: {
            origin,
            'access-control-request-method': 'POST',
            'access-control-request-headers': 'content-type,x-namespace',
          },
        });
      for (const origin of [uiOrigin(), uiOrigin().replace('127.0.0.1', 'localhost')]) {
        const ok = await preflight(origin);
        expect(ok.headers.get('access-control-allow-origin')).toBe(origin);
        expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
        expect(ok.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-namespace');
      }
      for (const origin of ['https://evil.example', stack.info.apiUrl, 'null']) {
        expect((await preflight(origin)).headers.get('access-control-allow-origin')).toBeNull();
        expect((await decode({ as: 'dave', origin })).headers.get('access-control-allow-origin')).toBeNull();
      }
      expect((await decode({ as: 'dave', origin: uiOrigin() })).headers.get('access-control-allow-origin')).toBe(
        uiOrigin(),
      );
    });

    test("a browser signed in to mechanic decodes from the Web UI's origin, and only from there", async () => {
      const browser = await signedIn('dave');
      const session = browser.cookies.get('mechanic_session');
      const cookie = `mechanic_session=${session!.value}`;
      const fromUi = await decode({ cookie, origin: uiOrigin() });
      expect(fromUi.status).toBe(200);
      expect(fromUi.headers.get('access-control-allow-origin')).toBe(uiOrigin());
      // The same cookie, sent by another page (or with no origin at all), is not a sign-in.
      expect((await decode({ cookie, origin: 'https://evil.example' })).status).toBe(401);
      expect((await decode({ cookie })).status).toBe(401);
    });

    test("the dev server's Web UI is pointed at it, and the temporal CLI reads the run through it", async () => {
      const settings = (await (await fetch(`${uiOrigin()}/api/v1/settings`)).json()) as {
        Codec?: { Endpoint?: string };
      };
      expect(settings.Codec?.Endpoint).toBe(`${stack.info.apiUrl}/codec`);
      const show = (...extra: string[]) =>
        new Promise<{ code: number; stdout: string }>((resolve) => {
          execFile(
            inject('temporalCli'),
            [
              'workflow',
              'show',
              '--workflow-id',
              id,
              '--address',
              stack.info.temporalAddress,
              '--output',
              'json',
              ...extra,
            ],
            { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
            (error, stdout) => resolve({ code: error ? 1 : 0, stdout }),
          );
        });
      /** The run's input as the CLI printed it: its encoding, and its data as text. */
      const inputOf = (stdout: string) => {
        const history = JSON.parse(stdout) as {
          events: { workflowExecutionStartedEventAttributes?: { input: { payloads: JsonPayload[] } } }[];
        };
        const p = history.events[0]!.workflowExecutionStartedEventAttributes!.input.payloads[0]!;
        return {
          encoding: Buffer.from(p.metadata['encoding']!, 'base64').toString(),
          data: Buffer.from(p.data, 'base64').toString(),
        };
      };
      const raw = await show();
      expect(raw.code).toBe(0);
      expect(inputOf(raw.stdout).encoding).toBe(ENCODING_ENCRYPTED);
      const clear = await show(
        '--codec-endpoint',
        `${stack.info.apiUrl}/codec`,
        '--codec-auth',
        `Bearer ${tokens['dave']}`,
      );
      expect(clear.code).toBe(0);
      expect(inputOf(clear.stdout)).toMatchObject({
        encoding: 'json/plain',
        data: expect.stringContaining('evidence pack test'),
      });
      // Without a token the CLI cannot decode: the endpoint refused it.
      const refused = await show('--codec-endpoint', `${stack.info.apiUrl}/codec`);
      expect(refused.stdout).not.toContain('json/plain');
      expect(refused.stdout).not.toContain(Buffer.from('json/plain').toString('base64'));
    });
  });
});
