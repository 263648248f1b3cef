/**
 * The launch form's model, pure: one field per runbook parameter, checked with the same rule the
 * server applies (core/params `checkParamValue`), plus the reason. Nothing here talks to the API;
 * the form only submits when `formProblems` is empty, so invalid values never leave it.
 */
import { z } from 'zod';
import { checkParamValue, listProblems, type ParamValue, type ScalarValue } from '../../src/core/params.ts';
import type { ListItem, Parameter } from '../../src/core/runbook.ts';
import { humanTextProblem } from '../../src/core/text.ts';
import type { RunbookInfo } from '../../src/api/schemas.ts';

/**
 * The parameter specs as the API sends them (the server filled defaults such as maxLength when it
 * loaded the runbook). Read here, not with the runbook parser, which would load the bash grammar.
 */
const ParameterSpecSchema = z.discriminatedUnion('type', [
  z.looseObject({
    type: z.literal('string'),
    description: z.string().optional(),
    default: z.string().optional(),
    pattern: z.string().optional(),
    maxLength: z.number().int().default(256),
  }),
  z.looseObject({
    type: z.literal('integer'),
    description: z.string().optional(),
    default: z.number().int().optional(),
    min: z.number().int().optional(),
    max: z.number().int().optional(),
  }),
  z.looseObject({ type: z.literal('boolean'), description: z.string().optional(), default: z.boolean().optional() }),
  z.looseObject({
    type: z.literal('enum'),
    description: z.string().optional(),
    values: z.array(z.string()).min(1),
    default: z.string().optional(),
  }),
  z.looseObject({
    type: z.literal('list'),
    description: z.string().optional(),
    items: z.discriminatedUnion('type', [
      z.looseObject({
        type: z.literal('string'),
        pattern: z.string().optional(),
        maxLength: z.number().int().default(256),
      }),
      z.looseObject({ type: z.literal('integer'), min: z.number().int().optional(), max: z.number().int().optional() }),
      z.looseObject({ type: z.literal('boolean') }),
      z.looseObject({ type: z.literal('enum'), values: z.array(z.string()).min(1) }),
    ]),
    minItems: z.number().int().default(1),
    maxItems: z.number().int().default(100),
    default: z.array(z.union([z.string(), z.number(), z.boolean()])).optional(),
  }),
  z.looseObject({
    type: z.literal('secret'),
    description: z.string().optional(),
    default: z.string().optional(),
    prefix: z.string().optional(),
  }),
]);

/** A list field is typed as its items separated by commas (an item of this form cannot hold a comma). */
export const LIST_SEPARATOR = ',';

export interface ParamField {
  readonly name: string;
  readonly spec: Parameter;
  /** What the operator typed or chose, as text ("true", "5", "v1.2.3"). */
  readonly text: string;
}

export interface FormState {
  readonly params: readonly ParamField[];
  readonly reason: string;
  /** Instance ids the operator kept; undefined = every resolved target. */
  readonly targets?: readonly string[];
}

/** Reads one parameter spec from the API; a spec this client does not understand is named, not guessed. */
export function readParameter(raw: unknown): Parameter | undefined {
  const parsed = ParameterSpecSchema.safeParse(raw);
  if (!parsed.success) return undefined;
  // Keep only the keys Parameter knows (the API object is loose).
  const p = parsed.data;
  const base = p.description !== undefined ? { description: p.description } : {};
  switch (p.type) {
    case 'string':
      return {
        ...base,
        type: 'string',
        maxLength: p.maxLength,
        ...(p.default !== undefined ? { default: p.default } : {}),
        ...(p.pattern !== undefined ? { pattern: p.pattern } : {}),
      };
    case 'integer':
      return {
        ...base,
        type: 'integer',
        ...(p.default !== undefined ? { default: p.default } : {}),
        ...(p.min !== undefined ? { min: p.min } : {}),
        ...(p.max !== undefined ? { max: p.max } : {}),
      };
    case 'boolean':
      return { ...base, type: 'boolean', ...(p.default !== undefined ? { default: p.default } : {}) };
    case 'enum':
      return { ...base, type: 'enum', values: p.values, ...(p.default !== undefined ? { default: p.default } : {}) };
    case 'list': {
      const i = p.items;
      const items: ListItem =
        i.type === 'string'
          ? { type: 'string', maxLength: i.maxLength, ...(i.pattern !== undefined ? { pattern: i.pattern } : {}) }
          : i.type === 'integer'
            ? {
                type: 'integer',
                ...(i.min !== undefined ? { min: i.min } : {}),
                ...(i.max !== undefined ? { max: i.max } : {}),
              }
            : i.type === 'enum'
              ? { type: 'enum', values: i.values }
              : { type: 'boolean' };
      return {
        ...base,
        type: 'list',
        items,
        minItems: p.minItems,
        maxItems: p.maxItems,
        ...(p.default !== undefined ? { default: p.default } : {}),
      };
    }
    case 'secret':
      return {
        ...base,
        type: 'secret',
        ...(p.default !== undefined ? { default: p.default } : {}),
        ...(p.prefix !== undefined ? { prefix: p.prefix } : {}),
      };
  }
}

/** The form as it opens: defaults filled, the first choice for enums and booleans without one. */
export function initialForm(runbook: RunbookInfo): { form: FormState; unreadable: string[] } {
  const params: ParamField[] = [];
  const unreadable: string[] = [];
  for (const [name, raw] of Object.entries(runbook.parameters)) {
    const spec = readParameter(raw);
    if (!spec) {
      unreadable.push(name);
      continue;
    }
    params.push({ name, spec, text: initialText(spec) });
  }
  return { form: { params, reason: '' }, unreadable };
}

function initialText(spec: Parameter): string {
  switch (spec.type) {
    case 'boolean':
      return String(spec.default ?? false);
    case 'enum':
      return spec.default ?? spec.values[0] ?? '';
    case 'integer':
      return spec.default !== undefined ? String(spec.default) : '';
    case 'string':
    case 'secret':
      return spec.default ?? '';
    case 'list':
      return (spec.default ?? []).map(String).join(`${LIST_SEPARATOR} `);
  }
}

/** The choices of a field that is picked rather than typed, or undefined for typed fields. */
export function choicesOf(spec: Parameter): readonly string[] | undefined {
  if (spec.type === 'boolean') return ['false', 'true'];
  if (spec.type === 'enum') return spec.values;
  return undefined;
}

/** The typed value the API receives for a field's text. */
export function valueOf(field: ParamField): ParamValue {
  switch (field.spec.type) {
    case 'integer':
      return /^-?\d{1,15}$/.test(field.text) ? Number(field.text) : field.text;
    case 'boolean':
      return field.text === 'true';
    case 'string':
    case 'enum':
    case 'secret':
      return field.text;
    case 'list':
      return listItemsOf(field.text).map((item) =>
        scalarOf(field.spec.type === 'list' ? field.spec.items : undefined, item),
      );
  }
}

/**
 * The items typed in a list field: split at each comma, spaces around an item dropped; an empty
 * field is an empty list. Said beside the field, so the split is never a surprise.
 */
export function listItemsOf(text: string): string[] {
  return text.trim() === '' ? [] : text.split(LIST_SEPARATOR).map((item) => item.trim());
}

function scalarOf(items: ListItem | undefined, text: string): ScalarValue {
  if (items?.type === 'integer') return /^-?\d{1,15}$/.test(text) ? Number(text) : text;
  if (items?.type === 'boolean') return text === 'true' ? true : text === 'false' ? false : text;
  return text;
}

/**
 * The problems of one field, one sentence each: a list names each bad item with its index
 * (`hosts[2]`), so the form can show one line per item beside the field.
 */
export function fieldProblems(field: ParamField): string[] {
  if (field.spec.type === 'list') return listProblems(field.name, field.spec, valueOf(field));
  const problem = paramProblem(field);
  return problem === undefined ? [] : [problem];
}

/** What the form says beside a field of this kind, before any problem: how to type it. */
export function fieldHint(spec: Parameter): string | undefined {
  if (spec.type === 'list') return `items separated by commas (${spec.minItems}–${spec.maxItems})`;
  if (spec.type === 'secret') return 'an SSM Parameter Store name, read on the instance; never the secret itself';
  return undefined;
}

/** The problem with one field as typed so far, with the server's own rule; undefined when fine. */
export function paramProblem(field: ParamField): string | undefined {
  if (field.text === '' && field.spec.type === 'integer') return `parameter "${field.name}" is required`;
  return checkParamValue(field.name, field.spec, valueOf(field));
}

export const REASON_MIN = 3;
export const REASON_MAX = 500;

/** The reason's problem, with the same limits the server's plan applies. */
export function reasonProblem(reason: string): string | undefined {
  const text = reason.trim();
  if (text.length < REASON_MIN) return 'say in a few words why this run is needed (3 characters at least)';
  if (text.length > REASON_MAX) return `the reason is longer than ${REASON_MAX} characters; shorten it`;
  return humanTextProblem('the reason', text);
}

/** Every problem of the form, by field name ("reason" for the reason). Empty = ready to plan. */
export function formProblems(form: FormState): Record<string, string> {
  const problems: Record<string, string> = {};
  for (const field of form.params) {
    const p = paramProblem(field);
    if (p !== undefined) problems[field.name] = p;
  }
  const r = reasonProblem(form.reason);
  if (r !== undefined) problems['reason'] = r;
  if (form.targets !== undefined && form.targets.length === 0) problems['targets'] = 'keep at least one target';
  return problems;
}

/** The launch body for a valid form. */
export function launchBody(runbook: RunbookInfo, form: FormState) {
  return {
    runbook: runbook.name,
    version: runbook.version,
    params: Object.fromEntries(form.params.map((f) => [f.name, valueOf(f)])),
    reason: form.reason.trim(),
    ...(form.targets !== undefined ? { targets: [...form.targets] } : {}),
  };
}
