import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { UserError } from '../core/errors.ts';
import { ACTIONS, type Authorizer } from './authorizer.ts';
import { RoleSchema, type User } from './users.ts';

const Names = z.array(z.string().min(1)).optional();
const RunbookFactsSchema = z.strictObject({
  name: z.string().min(1),
  owners: Names,
  risk: z.enum(['low', 'medium', 'high']).optional(),
  environment: z.string().optional(),
  tags: Names,
  approvalGroups: Names,
});

const ResourceSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('catalog') }),
  RunbookFactsSchema.extend({ kind: z.literal('runbook') }),
  z.strictObject({
    kind: z.literal('execution'),
    id: z.string().min(1),
    requester: z.string().optional(),
    runbook: RunbookFactsSchema.optional(),
    targets: Names,
    approvals: z.number().int().min(0).optional(),
    approvedGroups: Names,
    /** Who approved so far and as which approval groups: what the high-risk rule reads. */
    approvers: z
      .array(z.strictObject({ approver: z.string().min(1), groups: z.array(z.string()).default([]) }))
      .optional(),
    approvalsRequired: z.number().int().min(1).optional(),
  }),
  z.strictObject({ kind: z.literal('audit') }),
]);

const CaseSchema = z.strictObject({
  name: z.string().min(1),
  /** A name from `principals`. */
  principal: z.string().min(1),
  action: z.enum(ACTIONS),
  resource: ResourceSchema,
  context: z
    .strictObject({
      channel: z.enum(['cli', 'tui', 'slack', 'web', 'api']).default('cli'),
      time: z.iso.datetime().optional(),
    })
    .default({ channel: 'cli' }),
  expect: z.enum(['allow', 'deny']),
  /** When given, exactly these policies must decide (none for a default deny: `[]`). */
  policies: z.array(z.string()).optional(),
});

const CasesFileSchema = z.strictObject({
  principals: z.record(
    z.string(),
    z.strictObject({ roles: z.array(RoleSchema).min(1), groups: z.array(z.string()).optional() }),
  ),
  cases: z.array(CaseSchema).min(1),
});
export type PolicyCase = z.infer<typeof CaseSchema>;

export interface CaseResult {
  readonly name: string;
  readonly passed: boolean;
  /** What went wrong, one sentence; empty when it passed. */
  readonly problem: string;
}

/** Reads a table of policy cases (YAML), checking that every case names a known principal. */
export async function readPolicyCases(file: string): Promise<z.infer<typeof CasesFileSchema>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UserError(
      'USAGE',
      `the case file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  let json: unknown;
  try {
    json = parseYaml(text);
  } catch (e) {
    throw new UserError(
      'USAGE',
      `the case file ${file} is not valid YAML: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
    );
  }
  const r = CasesFileSchema.safeParse(json);
  if (!r.success) throw new UserError('USAGE', `the case file ${file} is invalid:\n${z.prettifyError(r.error)}`);
  for (const c of r.data.cases) {
    if (!Object.hasOwn(r.data.principals, c.principal)) {
      throw new UserError(
        'USAGE',
        `case "${c.name}" in ${file} names the principal "${c.principal}", which is not under principals`,
      );
    }
  }
  return r.data;
}

/** Runs every case against the authorizer and says, per case, whether the decision was the expected one. */
export function runPolicyCases(authorizer: Authorizer, file: z.infer<typeof CasesFileSchema>): CaseResult[] {
  return file.cases.map((c) => {
    const p = file.principals[c.principal]!;
    const user: User = {
      id: c.principal,
      displayName: c.principal,
      roles: p.roles,
      ...(p.groups ? { groups: p.groups } : {}),
    };
    const d = authorizer.authorize(user, c.action, c.resource, {
      channel: c.context.channel,
      ...(c.context.time ? { time: new Date(c.context.time) } : {}),
    });
    const got = d.allow ? 'allow' : 'deny';
    if (got !== c.expect) {
      return {
        name: c.name,
        passed: false,
        problem: `expected ${c.expect}, got ${got}${d.policies.length ? ` by ${d.policies.join(', ')}` : ''}: ${d.reason}`,
      };
    }
    if (c.policies && [...c.policies].sort().join(',') !== [...d.policies].sort().join(',')) {
      return {
        name: c.name,
        passed: false,
        problem: `${got} as expected, but decided by [${d.policies.join(', ')}] instead of [${c.policies.join(', ')}]`,
      };
    }
    return { name: c.name, passed: true, problem: '' };
  });
}
