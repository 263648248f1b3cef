/**
 * `mechanic bundle` writes what production workers load: the workflow code with the encrypting
 * failure converter inside, so a failure raised in workflow code never reaches history in clear.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.ts';

let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the bundle carries the workflows and the encrypting failure converter', async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mechanic-bundle-'));
  const out = path.join(dir, 'workflow-bundle.js');
  const r = await runCli(['bundle', '--out', out], process.env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const code = await readFile(out, 'utf8');
  expect(code).toContain('runbookExecution');
  // The converter module itself is in the bundle, not replaced by an empty stand-in.
  expect(code).toContain('encodeCommonAttributes: true');
  expect(code).not.toContain('__temporal_custom_failure_converter (ignored)');
});
