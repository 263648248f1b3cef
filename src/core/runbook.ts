import { z } from 'zod';
import { UserError } from './errors.ts';
import { checkParamValue } from './params.ts';
import { patternProblem } from './pattern.ts';
import { analyzeScript, type PlaceholderUse } from './shell-placement.ts';
import { conditionProblems } from './step-condition.ts';

/** Parameter names are also template placeholders, so they are plain identifiers. */
const ParamNameSchema = z.string().regex(/^[a-z][a-zA-Z0-9_]{0,39}$/, 'must be an identifier like "service_name"');

const ParamBase = { description: z.string().max(500).optional() };

/** The rules of a string value, for a string parameter and for each item of a list of strings. */
const StringRules = {
  /** RE2 syntax (core/pattern.ts), searched for in the value: anchor it with ^…$ to match the whole value. */
  pattern: z.string().min(1).max(500).optional(),
  maxLength: z.number().int().positive().max(4096).default(256),
};
const IntegerRules = { min: z.number().int().optional(), max: z.number().int().optional() };
const EnumRules = { values: z.array(z.string().min(1)).min(1) };

/** The type and rules of each item of a list parameter: a scalar type, never a list or a secret. */
export const ListItemSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('string'), ...StringRules }),
  z.strictObject({ type: z.literal('integer'), ...IntegerRules }),
  z.strictObject({ type: z.literal('boolean') }),
  z.strictObject({ type: z.literal('enum'), ...EnumRules }),
]);
export type ListItem = z.infer<typeof ListItemSchema>;

/**
 * A Parameter Store path a secret parameter's names must lie under: "/", then levels of letters,
 * digits and `_.-`, each followed by "/" (`/app/staging/`). It ends with "/" so that `/app/`
 * never admits `/application/…`; names are compared as SSM compares them, case and all.
 */
const SecretPrefixSchema = z
  .string()
  .max(1024)
  .regex(
    /^\/(?:[a-zA-Z0-9_.-]+\/)*$/,
    'must be a Parameter Store path that starts and ends with "/", like /app/staging/',
  )
  .refine((p) => !p.includes('..'), 'must not contain ".." (a Parameter Store name is not a file path)');

/** The most items a list parameter may declare (maxItems): each becomes one word of a command line. */
export const LIST_ITEMS_CAP = 500;

export const ParameterSchema = z.discriminatedUnion('type', [
  z.strictObject({
    ...ParamBase,
    type: z.literal('string'),
    default: z.string().optional(),
    ...StringRules,
  }),
  z.strictObject({
    ...ParamBase,
    type: z.literal('integer'),
    default: z.number().int().optional(),
    ...IntegerRules,
  }),
  z.strictObject({ ...ParamBase, type: z.literal('boolean'), default: z.boolean().optional() }),
  z.strictObject({
    ...ParamBase,
    type: z.literal('enum'),
    ...EnumRules,
    default: z.string().optional(),
  }),
  /**
   * A list of values of one item type. In a script, `{{ name }}` becomes the items, each one
   * shell-quoted word, so it may stand only as a whole argument of a simple command.
   */
  z.strictObject({
    ...ParamBase,
    type: z.literal('list'),
    items: ListItemSchema,
    minItems: z.number().int().min(0).max(LIST_ITEMS_CAP).default(1),
    maxItems: z.number().int().min(1).max(LIST_ITEMS_CAP).default(100),
    default: z.array(z.union([z.string(), z.number(), z.boolean()])).optional(),
  }),
  /**
   * A reference to a secret in SSM Parameter Store: the value is the parameter's name, never the
   * secret. `{{ name }}` becomes a fetch that runs on the instance under the instance's own role,
   * so mechanic, the plan, the audit log and Temporal only ever hold the name.
   */
  z.strictObject({
    ...ParamBase,
    type: z.literal('secret'),
    default: z.string().optional(),
    /**
     * The Parameter Store path the operator's name must lie under (`/app/staging/`): a name
     * outside it is refused when the run is planned. Without it, any name the instance's role may
     * read can be given; lint flags that (rule secret-without-prefix).
     */
    prefix: SecretPrefixSchema.optional(),
  }),
]);
export type Parameter = z.infer<typeof ParameterSchema>;

const InstanceIdSchema = z
  .string()
  .regex(/^(i-(\w{8}|\w{17})|mi-\w{17})$/, 'must be an instance id like i-0123456789abcdef0');
const TagKeySchema = z.string().regex(/^[\w.:/=+@-]{1,128}$/, 'must be a tag key');

/**
 * A `Name` tag value, as AWS allows tag values: letters, digits, spaces and _ . : / = + - @.
 * A name is looked up as the instance's `Name` tag, never its host name.
 */
const NameTagSchema = z
  .string()
  .regex(
    /^[\p{L}\p{N} _.:/=+@-]{1,256}$/u,
    'must be a Name tag value like "web-1" (letters, digits, spaces, _ . : / = + - @)',
  );

const InstanceIdsTargetSchema = z.strictObject({ instanceIds: z.array(InstanceIdSchema).min(1).max(50) });
const TagsTargetSchema = z.strictObject({ tags: z.record(TagKeySchema, z.string().min(1).max(256)) }).refine((t) => {
  const n = Object.keys(t.tags).length;
  return n >= 1 && n <= 5;
}, 'tags must name between 1 and 5 tags');
/** Instances by their `Name` tag; a name no instance carries is refused when the run is planned. */
const NamesTargetSchema = z.strictObject({ names: z.array(NameTagSchema).min(1).max(50) });

/**
 * The instances come from a parameter the operator fills: each value an instance id or a `Name`
 * tag. `within` is the author's bound (ids, tags or names): a value naming an instance outside it
 * is refused at plan time, so an operator never reaches an instance the runbook does not allow.
 * Without `within`, any managed instance the runbook's role may reach can be named.
 */
const FromParameterTargetSchema = z.strictObject({
  fromParameter: ParamNameSchema,
  within: z.union([InstanceIdsTargetSchema, TagsTargetSchema, NamesTargetSchema]).optional(),
});

/** Which instances a runbook may touch. The operator may narrow this at launch, never widen it. */
export const TargetsSchema = z.union([
  InstanceIdsTargetSchema,
  TagsTargetSchema,
  NamesTargetSchema,
  FromParameterTargetSchema,
]);
export type Targets = z.infer<typeof TargetsSchema>;

/**
 * Rate control, sent to SSM's SendCommand as MaxConcurrency and MaxErrors: how many instances run
 * a step at once (a number, or a percentage of the step's targets), and how many may fail before
 * SSM starts it on no further instance (0: stop after the first failure, SSM's default).
 */
const RATE_FORMS = {
  concurrency: 'a whole number of at least 1 or a percentage from 1% to 100%, like 5 or "25%"',
  errors: 'a whole number of at least 0 or a percentage from 0% to 100%, like 0 or "10%"',
};
export const MaxConcurrencySchema = z.union(
  [
    z.number().int().min(1, `must be ${RATE_FORMS.concurrency}`).max(9_999_999),
    z.string().regex(/^([1-9]\d?|100)%$/, `must be ${RATE_FORMS.concurrency}`),
  ],
  { error: `must be ${RATE_FORMS.concurrency}` },
);
export const MaxErrorsSchema = z.union(
  [
    z.number().int().min(0, `must be ${RATE_FORMS.errors}`).max(9_999_999),
    z.string().regex(/^(\d{1,2}|100)%$/, `must be ${RATE_FORMS.errors}`),
  ],
  { error: `must be ${RATE_FORMS.errors}` },
);
export type RateLimit = z.infer<typeof MaxConcurrencySchema>;

const ConditionValueSchema = z.union([z.string(), z.number(), z.boolean()]);
const ConditionListSchema = z.array(ConditionValueSchema).min(1).max(50);
export const StepConditionSchema = z.strictObject({
  param: ParamNameSchema,
  equals: ConditionValueSchema.optional(),
  notEquals: ConditionValueSchema.optional(),
  in: ConditionListSchema.optional(),
  notIn: ConditionListSchema.optional(),
});

export const StepSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be a lowercase step name like "restart-service"'),
  description: z.string().max(500).optional(),
  /** A bash script; `{{ name }}` placeholders are replaced by shell-quoted parameter values. */
  script: z.string().min(1).max(16_000),
  timeoutSeconds: z.number().int().min(1).max(172_800).default(300),
  /** This step's own rate control; the runbook's applies where it sets none. */
  maxConcurrency: MaxConcurrencySchema.optional(),
  maxErrors: MaxErrorsSchema.optional(),
  /**
   * The step runs only when this test on one parameter holds, decided when the plan is made:
   * `{ param: mode, equals: full }`, `notEquals`, `in: [...]`, `notIn: [...]`, or `{ param: drain }`
   * for a boolean. Data, never code; checked against the declared parameters.
   */
  condition: StepConditionSchema.optional(),
  /**
   * How many times a failed step is sent again (0 to 5): each time as a new SSM command, to the
   * instances it has not yet succeeded on.
   */
  retries: z.number().int().min(0).max(5).optional(),
  /** The pause before each retry (default 10 s). */
  retryDelaySeconds: z.number().int().min(1).max(3600).optional(),
  /** A failure of this step (after its retries) is recorded and the run goes on with the next step. */
  continueOnError: z.boolean().optional(),
});
export type Step = z.infer<typeof StepSchema>;

/** A group or user id, as the identity provider and the users file spell them. */
const PrincipalNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$/, 'must be a group or user id like "sre" or "alice"');

/** How much harm a wrong run can do; policies read it, and high risk needs two approving groups. */
export const RiskSchema = z.enum(['low', 'medium', 'high']);
export type Risk = z.infer<typeof RiskSchema>;

const uniqueNames = (what: string) =>
  z
    .array(PrincipalNameSchema)
    .max(50)
    .refine((names) => new Set(names).size === names.length, `${what} must not list a name twice`);

export const ApprovalSchema = z.strictObject({
  required: z.number().int().min(1).max(10).default(1),
  expiresAfterMinutes: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 60)
    .default(60),
  /** The groups whose members may approve or reject its runs; empty: any approver the policies allow. */
  groups: uniqueNames('approval.groups').default([]),
});

export const RunbookSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z][a-z0-9-]{1,62}$/, 'must be a lowercase name like "restart-web"'),
    version: z.number().int().positive(),
    description: z.string().min(1).max(2000),
    /** Groups or users who own it: they answer for it and may not review their own versions. */
    owners: uniqueNames('owners').default([]),
    risk: RiskSchema.default('medium'),
    /** True when its steps only read (diagnostics): policies may treat it more lightly. */
    readOnly: z.boolean().default(false),
    environment: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be a lowercase environment name like "production"')
      .default('default'),
    tags: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9._:/-]{0,62}$/, 'must be a lowercase tag like "web" or "team:payments"'))
      .max(20)
      .default([]),
    roleArn: z.string().regex(/^arn:aws:iam::\d{12}:role\/[\w+=,.@/-]{1,64}$/, 'must be an IAM role ARN'),
    /**
     * The longest STS session, in minutes, the author accepts for a run of it (15 to 720): a plan
     * whose credentials must last longer (every step, retry and wave) is refused. Absent: STS's 12 hours.
     */
    maxCredentialMinutes: z.number().int().min(15).max(720).optional(),
    parameters: z.record(ParamNameSchema, ParameterSchema).default({}),
    targets: TargetsSchema,
    /** Rate control for every step that sets none (SSM's defaults otherwise: 50 at once, stop at the first error). */
    maxConcurrency: MaxConcurrencySchema.optional(),
    maxErrors: MaxErrorsSchema.optional(),
    approval: ApprovalSchema.default({ required: 1, expiresAfterMinutes: 60, groups: [] }),
    steps: z.array(StepSchema).min(1).max(50),
    onFailure: z.array(StepSchema).max(10).default([]),
  })
  .superRefine((rb, ctx) => {
    if (rb.risk === 'high') {
      // Stated in the file rather than implied: what an author reads is what the approvers face.
      if (rb.approval.groups.length < 2) {
        ctx.addIssue({
          code: 'custom',
          path: ['approval', 'groups'],
          message:
            'a high-risk runbook needs approvers from two different groups: list at least two groups under approval.groups',
        });
      }
      if (rb.approval.required < 2) {
        ctx.addIssue({
          code: 'custom',
          path: ['approval', 'required'],
          message:
            'a high-risk runbook needs approvals from two different groups, so approval.required must be at least 2',
        });
      }
    }
    for (const list of ['steps', 'onFailure'] as const) {
      for (const [i, step] of rb[list].entries()) {
        for (const problem of stepControlProblems(step, list, rb.parameters)) {
          ctx.addIssue({ code: 'custom', path: [list, i, ...problem.path], message: problem.message });
        }
      }
    }
    const names = new Set<string>();
    for (const step of [...rb.steps, ...rb.onFailure]) {
      if (names.has(step.name)) ctx.addIssue({ code: 'custom', message: `step name "${step.name}" is used twice` });
      names.add(step.name);
      // Placeholders are checked with a real bash parser: a value may only stand where bash reads it
      // once as data (shell-placement.ts); every other place is refused here, naming line and rule.
      const analysis = analyzeScript(step.script);
      if (analysis.syntaxError) {
        const { line, column, reason } = analysis.syntaxError;
        ctx.addIssue({
          code: 'custom',
          path: ['steps'],
          message: `step "${step.name}", line ${line}, column ${column}: ${reason}, so where its placeholders go cannot be proven safe; fix the syntax (rule unparsable-script)`,
        });
      }
      for (const use of analysis.uses) {
        const declared = Object.hasOwn(rb.parameters, use.name);
        if (!declared && !BUILTIN_PLACEHOLDERS.has(use.name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['steps'],
            message: `step "${step.name}" uses {{ ${use.name} }}, which is not a declared parameter`,
          });
        }
        const problem = placementProblem(use, declared ? rb.parameters[use.name]?.type : 'string');
        if (problem !== undefined && !analysis.syntaxError) {
          ctx.addIssue({ code: 'custom', path: ['steps'], message: `step "${step.name}", ${problem}` });
        }
      }
      const malformed = /\{\{(?!\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\})/.exec(step.script);
      if (malformed) {
        ctx.addIssue({
          code: 'custom',
          path: ['steps'],
          message: `step "${step.name}" has a "{{" that is not a placeholder like {{ name }}`,
        });
      }
    }
    for (const problem of targetProblems(rb)) {
      ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
    }
    for (const [name, p] of Object.entries(rb.parameters)) {
      if (BUILTIN_PLACEHOLDERS.has(name) || name.startsWith('mechanic_')) {
        ctx.addIssue({
          code: 'custom',
          message: `parameter "${name}" takes a name reserved for mechanic's built-in placeholders (names starting with mechanic_); rename it`,
        });
      }
      if (p.type === 'integer' && p.min !== undefined && p.max !== undefined && p.min > p.max) {
        ctx.addIssue({ code: 'custom', message: `parameter "${name}" has min greater than max` });
      }
      if (p.type === 'enum' && new Set(p.values).size !== p.values.length) {
        ctx.addIssue({ code: 'custom', message: `parameter "${name}" lists a value twice` });
      }
      if (p.type === 'string' && p.pattern !== undefined) {
        // Compiled with RE2 here, at load, so a pattern RE2 cannot run is refused before anyone launches.
        const problem = patternProblem(name, p.pattern, p.maxLength);
        if (problem !== undefined) {
          ctx.addIssue({ code: 'custom', message: problem });
          continue; // its default cannot be checked against a pattern that cannot run
        }
      }
      if (p.type === 'list' && !listRulesHold(name, p, ctx)) continue;
      // A malformed prefix is reported at its field; its default cannot be judged against it.
      if (p.type === 'secret' && p.prefix !== undefined && !SecretPrefixSchema.safeParse(p.prefix).success) continue;
      if (p.default !== undefined) {
        // A default must pass the same checks as a value an operator types.
        const problem = checkParamValue(name, p, p.default);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `the default of ${problem}` });
      }
    }
  });
export type Runbook = z.infer<typeof RunbookSchema>;

/**
 * The rules of a list's own declaration (minItems ≤ maxItems, and the item rules an integer, enum
 * or string parameter would have); false when its default cannot be checked against them.
 */
function listRulesHold(name: string, p: Extract<Parameter, { type: 'list' }>, ctx: z.RefinementCtx): boolean {
  const items = p.items;
  let ok = true;
  const add = (message: string, path: (string | number)[]) => {
    ctx.addIssue({ code: 'custom', path: ['parameters', name, ...path], message });
    ok = false;
  };
  if (p.minItems > p.maxItems) {
    add(`parameter "${name}" has minItems greater than maxItems; swap them or fix one (rule list-bounds)`, [
      'minItems',
    ]);
  }
  if (items.type === 'integer' && items.min !== undefined && items.max !== undefined && items.min > items.max) {
    add(`parameter "${name}" has items.min greater than items.max; swap them or fix one (rule min-above-max)`, [
      'items',
      'min',
    ]);
  }
  if (items.type === 'enum' && new Set(items.values).size !== items.values.length) {
    add(`parameter "${name}" lists an item value twice; remove the second one (rule duplicate-value)`, [
      'items',
      'values',
    ]);
  }
  if (items.type === 'string' && items.pattern !== undefined) {
    const problem = patternProblem(name, items.pattern, items.maxLength);
    if (problem !== undefined) {
      add(`${problem.replace(/^(parameter "[^"]+") has a pattern/, '$1 has an item pattern')} (rule pattern)`, [
        'items',
        'pattern',
      ]);
    }
  }
  return ok;
}

/** Why a placeholder may not stand where it does, as the end of one sentence; undefined if it may. */
function placementProblem(use: PlaceholderUse, type: Parameter['type'] | undefined): string | undefined {
  const at = `line ${use.line}: {{ ${use.name} }}`;
  const { placement } = use;
  if (type === 'list' && placement.kind !== 'refused' && placement.kind !== 'comment') {
    if (placement.kind === 'argument' && placement.wholeArgument) return undefined;
    return `${at} is a list, which becomes one word per item, so it may only stand alone as a whole argument of a command, not glued to other text, inside [ … ] or in arithmetic (rule list-placement); write it as its own word, e.g. ls {{ ${use.name} }}`;
  }
  if (type === 'secret' && placement.kind === 'arithmetic') {
    return `${at} is a secret reference, which may not stand in arithmetic or an assignment (rule secret-placement); pass it as a command argument, e.g. curl --user admin:{{ ${use.name} }}`;
  }
  switch (placement.kind) {
    case 'refused':
      return placement.rule === 'option-word'
        ? `${at} stands ${placement.why} (rule option-word); write the option and the value as two words, e.g. -n {{ ${use.name} }}, or join them with =, e.g. --name={{ ${use.name} }}`
        : `${at} stands ${placement.why} (rule ${placement.rule}); put it where a plain argument goes, e.g. echo {{ ${use.name} }}`;
    case 'arithmetic':
      return type === 'integer'
        ? undefined
        : `${at} stands in arithmetic or an assignment, where bash evaluates a value such as a[$(cmd)] as code (rule integer-only); only an integer parameter may stand there, so declare it type: integer or pass it as a plain argument`;
    case 'argument':
    case 'comment':
      return undefined;
  }
}

/** Problems of a step's condition, retries and continueOnError, each at the field it is about. */
function stepControlProblems(
  step: Step,
  list: 'steps' | 'onFailure',
  parameters: Readonly<Record<string, Parameter>>,
): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  if (step.condition !== undefined) {
    for (const p of conditionProblems(step.name, step.condition, parameters)) {
      out.push({ path: ['condition', p.field, ...(p.item !== undefined ? [p.item] : [])], message: p.message });
    }
  }
  if (step.retryDelaySeconds !== undefined && !(step.retries !== undefined && step.retries > 0)) {
    out.push({
      path: ['retryDelaySeconds'],
      message: `step "${step.name}" sets retryDelaySeconds but is never retried; add retries (1 to 5) or remove it (rule retry-delay-without-retries)`,
    });
  }
  if (list === 'onFailure' && step.continueOnError !== undefined) {
    out.push({
      path: ['continueOnError'],
      message: `step "${step.name}" is an onFailure step, and every onFailure step runs whatever the others do, so continueOnError means nothing here; remove it (rule continue-on-error-in-on-failure)`,
    });
  }
  return out;
}

/** The parameter types whose values can name instances: instance ids or Name tags are text. */
const TARGET_PARAMETER_TYPES = new Set(['string', 'enum']);

/**
 * Problems of the targets and rate control that the field schemas cannot see alone: a
 * `fromParameter` naming no parameter, or one whose values cannot be instance names; a maxErrors
 * above the number of instances the runbook lists, which could never stop a step.
 */
function targetProblems(rb: {
  readonly targets: Targets;
  readonly parameters: Readonly<Record<string, Parameter>>;
  readonly maxErrors?: RateLimit | undefined;
  readonly steps: readonly Step[];
  readonly onFailure: readonly Step[];
}): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const { targets } = rb;
  if ('fromParameter' in targets) {
    const name = targets.fromParameter;
    const param = Object.hasOwn(rb.parameters, name) ? rb.parameters[name] : undefined;
    // Read as plain strings: a list parameter's items say what each value is.
    const type: string | undefined = param?.type;
    const itemType: string | undefined = (param as { items?: { type?: string } } | undefined)?.items?.type;
    if (param === undefined) {
      out.push({
        path: ['targets', 'fromParameter'],
        message: `targets.fromParameter names "${name}", which is not a declared parameter; declare it under parameters (a string or a list of strings) or fix the name (rule target-parameter)`,
      });
    } else if (!(
      TARGET_PARAMETER_TYPES.has(type ?? '') ||
      (type === 'list' && TARGET_PARAMETER_TYPES.has(itemType ?? ''))
    )) {
      const article = (w: string) => (/^[aeiou]/.test(w) ? `an ${w}` : `a ${w}`);
      const what = type === 'list' ? `a list of ${itemType ?? 'values'}` : `${article(type ?? 'typed')} parameter`;
      out.push({
        path: ['targets', 'fromParameter'],
        message: `targets.fromParameter names "${name}", ${what}, but targets come from instance ids or Name tags; make it a string, enum or list of strings (rule target-parameter-type)`,
      });
    }
  }
  // Only a runbook that lists its instances knows how many a step runs on before the plan.
  const listed = 'instanceIds' in targets ? targets.instanceIds.length : 'names' in targets ? targets.names.length : 0;
  if (listed > 0) {
    const check = (value: RateLimit | undefined, path: (string | number)[]) => {
      if (typeof value === 'number' && value > listed) {
        out.push({
          path,
          message: `maxErrors is ${value}, more than the ${listed} instance${listed === 1 ? '' : 's'} this runbook targets, so no failure could ever stop a step; lower it, or write "100%" to never stop (rule max-errors-above-targets)`,
        });
      }
    };
    check(rb.maxErrors, ['maxErrors']);
    for (const list of ['steps', 'onFailure'] as const) {
      rb[list].forEach((step, i) => check(step.maxErrors, [list, i, 'maxErrors']));
    }
  }
  return out;
}

/** Placeholders every step may use besides its parameters. */
export const BUILTIN_PLACEHOLDERS: ReadonlySet<string> = new Set(['mechanic_execution_id', 'mechanic_step']);

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

export function placeholdersOf(script: string): string[] {
  return [...script.matchAll(PLACEHOLDER)].map((m) => m[1] ?? '');
}

/** Validates an already-parsed YAML/JSON value as a runbook. `source` names it in the error. */
export function parseRunbook(input: unknown, source = 'runbook'): Runbook {
  const result = RunbookSchema.safeParse(input);
  if (!result.success) {
    throw new UserError('RUNBOOK_INVALID', `${source} is not a valid runbook:\n${z.prettifyError(result.error)}`);
  }
  return result.data;
}

export { PLACEHOLDER as PLACEHOLDER_PATTERN };
