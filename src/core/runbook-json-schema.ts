import { z } from 'zod';
import { RunbookSchema } from './runbook.ts';

/** Where the committed copy lives, relative to the repository root; examples point at it. */
export const RUNBOOK_JSON_SCHEMA_PATH = 'schema/runbook.schema.json';

/**
 * The runbook schema as JSON Schema (draft 2020-12), generated from the zod schema so editors
 * (yaml-language-server) complete and check runbook YAML with the same rules mechanic loads it
 * with. It describes the input a file may hold (`io: 'input'`): fields with defaults are optional.
 * Refinements that JSON Schema cannot say (bash placement of placeholders, RE2 patterns, defaults
 * obeying their own rules) are left to `mechanic runbook lint`.
 */
export function runbookJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(RunbookSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  return {
    $schema,
    title: 'mechanic runbook',
    description:
      'One version of a mechanic runbook. Generated from src/core/runbook.ts by "mechanic runbook schema"; ' +
      '"mechanic runbook lint" checks what JSON Schema cannot (placeholder placement in bash, RE2 patterns).',
    ...rest,
  };
}

/** The committed file's exact text: pretty JSON with a final newline, so a diff shows what changed. */
export function runbookJsonSchemaText(): string {
  return `${JSON.stringify(runbookJsonSchema(), null, 2)}\n`;
}
