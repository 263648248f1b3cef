import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import {
  RUNBOOK_JSON_SCHEMA_PATH,
  runbookJsonSchema,
  runbookJsonSchemaText,
} from '../../src/core/runbook-json-schema.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMMITTED = readFileSync(path.join(ROOT, RUNBOOK_JSON_SCHEMA_PATH), 'utf8');
/** What each example's first line says, so yaml-language-server checks it against the committed schema. */
const SCHEMA_LINE = `# yaml-language-server: $schema=../${RUNBOOK_JSON_SCHEMA_PATH}`;

describe('the runbook JSON Schema', () => {
  test('the committed file is the one the zod schema generates (regenerate: mechanic runbook schema --out schema/runbook.schema.json)', () => {
    // Compared as JSON: prettier lays the committed file out its own way.
    expect(JSON.parse(COMMITTED)).toEqual(JSON.parse(runbookJsonSchemaText()));
  });

  test('mechanic runbook schema prints the committed schema', async () => {
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [path.join(ROOT, 'bin/mechanic.js'), 'runbook', 'schema'], { cwd: ROOT }, (e, out) =>
        e ? reject(new Error(`mechanic runbook schema failed: ${e.message}`)) : resolve(out),
      ),
    );
    expect(JSON.parse(stdout)).toEqual(JSON.parse(COMMITTED));
  });

  test('it describes what a file may hold: required fields, no unknown keys, the metadata fields', () => {
    const schema = runbookJsonSchema() as {
      $schema: string;
      required: string[];
      additionalProperties: boolean;
      properties: Record<string, { enum?: string[] }>;
    };
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    // Fields with defaults are optional in a file (the schema is the input side of zod's).
    expect(new Set(schema.required)).toEqual(
      new Set(['name', 'version', 'description', 'roleArn', 'targets', 'steps']),
    );
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['owners', 'risk', 'readOnly', 'environment', 'tags', 'approval', 'onFailure']),
    );
    expect(schema.properties['risk']?.enum).toEqual(['low', 'medium', 'high']);
  });

  test('every example runbook starts with the line that points editors at the schema', () => {
    const examples = readdirSync(path.join(ROOT, 'runbooks')).filter((f) => /\.ya?ml$/.test(f));
    expect(examples.length).toBeGreaterThanOrEqual(8);
    for (const f of examples) {
      expect(readFileSync(path.join(ROOT, 'runbooks', f), 'utf8').split('\n')[0], f).toBe(SCHEMA_LINE);
    }
  });
});
