import { readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseParams } from '../../src/core/params.ts';
import { parseRunbook, type Runbook } from '../../src/core/runbook.ts';
import { PLACEHOLDER_PATTERN } from '../../src/core/shell-placement.ts';
import { renderScript, shellQuote } from '../../src/core/template.ts';
import { DEMO_INSTANCE_IDS } from '../../src/devfleet/index.ts';
import { sendCommand, startHarness, waitCommand, type Harness } from './devfleet-helpers.ts';

/**
 * The shell-injection corpus (test/corpus/shell-placements/placements.yaml), run for real: every
 * placement is either refused when the runbook loads, naming its line and rule, or rendered with
 * a hostile value and run by bash on a devfleet instance, where the value must come out literally
 * and no PWN file may appear. Refused entries marked `exploit` are also run the way mechanic used
 * to render them, and must create PWN there: the corpus holds real holes, not hypothetical ones.
 */

const CorpusEntrySchema = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9-]+$/),
    script: z.string().min(1),
    type: z.enum(['string', 'integer']).default('string'),
    value: z.union([z.string(), z.number().int()]),
    refused: z.string().optional(),
    line: z.number().int().positive().default(1),
    exploit: z.boolean().default(false),
    stdout: z.string().optional(),
    renderRefused: z.boolean().default(false),
  })
  .refine((e) => [e.refused !== undefined, e.stdout !== undefined, e.renderRefused].filter(Boolean).length === 1, {
    message: 'an entry expects exactly one of refused, stdout or renderRefused',
  })
  .refine((e) => !e.exploit || e.refused !== undefined, { message: 'only a refused entry can be an exploit' });
type CorpusEntry = z.infer<typeof CorpusEntrySchema>;

const CORPUS_FILE = 'test/corpus/shell-placements/placements.yaml';
const corpus: CorpusEntry[] = z
  .array(CorpusEntrySchema)
  .parse(parseYaml(readFileSync(new URL(`../../${CORPUS_FILE}`, import.meta.url), 'utf8')));

const WEB1 = DEMO_INSTANCE_IDS['web-1'];

function runbookOf(entry: CorpusEntry): Runbook {
  const name = entry.type === 'integer' ? 'n' : 'v';
  return parseRunbook(
    {
      name: 'shell-corpus',
      version: 1,
      description: `Shell placement corpus entry ${entry.id}.`,
      roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
      parameters: { [name]: entry.type === 'integer' ? { type: 'integer' } : { type: 'string', maxLength: 4096 } },
      targets: { instanceIds: [WEB1] },
      steps: [{ name: 'corpus', script: entry.script }],
    },
    `${CORPUS_FILE} (${entry.id})`,
  );
}

function renderedScript(entry: CorpusEntry): string {
  const runbook = runbookOf(entry);
  const params = parseParams(runbook, { [entry.type === 'integer' ? 'n' : 'v']: entry.value });
  return renderScript(runbook.steps[0]!.script, params);
}

/** Every file called PWN under `dir`. */
async function pwnFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.name === 'PWN').map((e) => join(e.parentPath, e.name));
}

let h: Harness;
let ssm: SSMClient;
let root: string;
const renderErrors = new Map<string, unknown>();

beforeAll(async () => {
  h = await startHarness();
  ({ ssm } = await h.assume());
  root = join(h.dataDir, 'instances', WEB1, 'root');
  // Accepted entries rendered by mechanic; exploit entries rendered as mechanic once did (one
  // single-quoted word wherever the placeholder stood).
  const cases: [string, string][] = [];
  for (const e of corpus.filter((c) => c.stdout !== undefined)) {
    try {
      cases.push([e.id, renderedScript(e)]);
    } catch (error) {
      renderErrors.set(e.id, error); // reported by the entry's own test
    }
  }
  const exploits = corpus
    .filter((e) => e.exploit)
    .map((e) => [e.id, e.script.replace(PLACEHOLDER_PATTERN, () => shellQuote(e.value))] as const);
  await Promise.all([runOnHost('cases', cases), runOnHost('exploits', exploits)]);
}, 120_000);
afterAll(async () => {
  await h?.close();
});

/**
 * Runs each script on web-1 with its own bash, in its own folder `<group>/<id>`, leaving its exit
 * code and output beside it. One SendCommand per group keeps the corpus fast on a shared machine;
 * each script travels base64-encoded, so one that does not parse cannot break the others.
 */
async function runOnHost(group: string, scripts: readonly (readonly [string, string])[]): Promise<void> {
  const commands = scripts.map(([id, script]) => {
    const encoded = Buffer.from(script).toString('base64');
    return (
      `mkdir -p ${group}/${id} && printf '%s' ${encoded} | base64 -d > ${group}/${id}.sh && ` +
      `(cd ${group}/${id} && bash ../${id}.sh > ../${id}.out 2> ../${id}.err; echo $? > ../${id}.code)`
    );
  });
  const cmd = await sendCommand(ssm, [WEB1], commands);
  const [invocation] = await waitCommand(ssm, cmd.CommandId!, 90_000);
  expect(invocation?.Status).toBe('Success');
}

async function resultOf(group: string, id: string) {
  const read = (ext: string) => readFile(join(root, group, `${id}.${ext}`), 'utf8');
  return { code: Number(await read('code')), stdout: await read('out'), stderr: await read('err') };
}

test('the corpus holds at least 40 placements, each with its own id', () => {
  expect(corpus.length).toBeGreaterThanOrEqual(40);
  expect(new Set(corpus.map((e) => e.id)).size).toBe(corpus.length);
});

describe('refused at load, naming the line and the rule', () => {
  test.each(corpus.filter((e) => e.refused !== undefined).map((e) => [e.id, e] as const))('%s', async (_id, entry) => {
    let error: (Error & { code?: string }) | undefined;
    try {
      runbookOf(entry);
    } catch (e) {
      error = e as Error & { code?: string };
    }
    expect(error, 'the runbook loaded').toMatchObject({ code: 'RUNBOOK_INVALID' });
    expect(error!.message).toContain(`(${entry.id})`);
    expect(error!.message).toContain(`line ${entry.line}`);
    expect(error!.message).toContain(`(rule ${entry.refused})`);

    if (entry.exploit) {
      // Rendered as mechanic once did, the same placement ran a command on the host. A shell fed
      // through >(…) runs on after its script ends, so give it a moment.
      const folder = join(root, 'exploits', entry.id);
      await expect.poll(() => pwnFiles(folder), { timeout: 5_000, interval: 50 }).not.toEqual([]);
    }
  });
});

describe('accepted placements run on the host with the value as literal data', () => {
  test.each(corpus.filter((e) => e.stdout !== undefined).map((e) => [e.id, e] as const))('%s', async (_id, entry) => {
    if (renderErrors.has(entry.id)) throw renderErrors.get(entry.id);
    const result = await resultOf('cases', entry.id);
    expect(result).toMatchObject({ code: 0, stdout: entry.stdout });
    expect(await pwnFiles(join(root, 'cases', entry.id))).toEqual([]);
  });

  test('no accepted placement created PWN anywhere on the host', async () => {
    expect(await pwnFiles(join(root, 'cases'))).toEqual([]);
  });
});

describe('accepted at load, but a value that would be read as an option is refused at launch', () => {
  test.each(corpus.filter((e) => e.renderRefused).map((e) => [e.id, e] as const))('%s', (_id, entry) => {
    expect(() => renderedScript(entry)).toThrow(expect.objectContaining({ code: 'TEMPLATE_UNSAFE' }));
  });
});
