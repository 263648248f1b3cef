import { z } from 'zod';

/**
 * A small IAM policy evaluator for the part of IAM that mechanic's policies use. It is deliberately
 * fail-closed: whatever it does not understand can only take permissions away, never grant them.
 *
 * Supported: Allow/Deny statements; Action/NotAction with `*`/`?` wildcards (case-insensitive);
 * Resource/NotResource with `*`/`?` wildcards (case-sensitive, as ARNs are); Condition operators
 * StringEquals, StringNotEquals, StringEqualsIgnoreCase, StringNotEqualsIgnoreCase, StringLike and
 * StringNotLike, each optionally with the IfExists suffix. Multiple values of one key match if any
 * matches (all must not match for the negated operators); keys and operators are ANDed.
 * Not supported: policy variables (`${aws:username}` is matched literally), ForAnyValue:/ForAllValues:
 * set operators, and every other operator family; an unsupported operator makes an Allow statement
 * not apply and a Deny statement apply.
 */

const StringOrListSchema = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
const ConditionValueSchema = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.array(z.union([z.string(), z.number(), z.boolean()])).min(1),
]);

export const PolicyStatementSchema = z
  .strictObject({
    Sid: z
      .string()
      .regex(/^[A-Za-z0-9]*$/, 'Sid must be alphanumeric')
      .optional(),
    Effect: z.enum(['Allow', 'Deny']),
    Action: StringOrListSchema.optional(),
    NotAction: StringOrListSchema.optional(),
    Resource: StringOrListSchema.optional(),
    NotResource: StringOrListSchema.optional(),
    Condition: z.record(z.string().min(1), z.record(z.string().min(1), ConditionValueSchema)).optional(),
  })
  .refine((s) => (s.Action === undefined) !== (s.NotAction === undefined), {
    message: 'a statement needs exactly one of Action and NotAction',
  })
  .refine((s) => (s.Resource === undefined) !== (s.NotResource === undefined), {
    message: 'a statement needs exactly one of Resource and NotResource',
  });

/** An identity or session policy document (no Principal: those belong to resource policies). */
export const PolicyDocumentSchema = z.strictObject({
  Version: z.enum(['2012-10-17', '2008-10-17']).optional(),
  Id: z.string().optional(),
  Statement: z.union([PolicyStatementSchema, z.array(PolicyStatementSchema).min(1)]),
});

export type PolicyStatement = z.infer<typeof PolicyStatementSchema>;
export type PolicyDocument = z.infer<typeof PolicyDocumentSchema>;

export type ParsedPolicy = { ok: true; policy: PolicyDocument } | { ok: false; reason: string };

/** Parses a policy from its JSON text, as AssumeRole receives it. */
export function parsePolicyJson(text: string): ParsedPolicy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'Syntax errors in policy.' };
  }
  const r = PolicyDocumentSchema.safeParse(raw);
  if (!r.success) return { ok: false, reason: z.prettifyError(r.error).replace(/\s+/g, ' ').trim() };
  return { ok: true, policy: r.data };
}

/** One question to a policy. Context keys are lower-case (IAM condition keys are case-insensitive). */
export interface AuthzRequest {
  action: string;
  resource: string;
  context: Readonly<Record<string, string>>;
}

export type Decision = 'allow' | 'explicit-deny' | 'implicit-deny';

const list = (v: string | readonly string[]): readonly string[] => (typeof v === 'string' ? [v] : v);

const globCache = new Map<string, RegExp>();
/** IAM wildcard match: `*` is any run of characters, `?` exactly one; nothing else is special. */
export function wildcardMatch(pattern: string, value: string, ignoreCase: boolean): boolean {
  const key = `${ignoreCase ? 'i' : 's'}:${pattern}`;
  let re = globCache.get(key);
  if (!re) {
    const body = pattern
      .split('')
      .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\/-]/g, '\\$&')))
      .join('');
    re = new RegExp(`^${body}$`, ignoreCase ? 'is' : 's');
    if (globCache.size > 10_000) globCache.clear();
    globCache.set(key, re);
  }
  return re.test(value);
}

type ConditionOutcome = 'match' | 'no-match' | 'unsupported';

const OPERATORS: Record<string, { negated: boolean; test: (pattern: string, value: string) => boolean }> = {
  stringequals: { negated: false, test: (p, v) => p === v },
  stringnotequals: { negated: true, test: (p, v) => p === v },
  stringequalsignorecase: { negated: false, test: (p, v) => p.toLowerCase() === v.toLowerCase() },
  stringnotequalsignorecase: { negated: true, test: (p, v) => p.toLowerCase() === v.toLowerCase() },
  stringlike: { negated: false, test: (p, v) => wildcardMatch(p, v, false) },
  stringnotlike: { negated: true, test: (p, v) => wildcardMatch(p, v, false) },
};

function evaluateCondition(
  condition: NonNullable<PolicyStatement['Condition']>,
  context: AuthzRequest['context'],
): ConditionOutcome {
  for (const [rawOperator, block] of Object.entries(condition)) {
    let name = rawOperator.toLowerCase();
    const ifExists = name.endsWith('ifexists');
    if (ifExists) name = name.slice(0, -'ifexists'.length);
    const op = OPERATORS[name];
    if (!op) return 'unsupported';
    for (const [key, rawValues] of Object.entries(block)) {
      const patterns = (Array.isArray(rawValues) ? rawValues : [rawValues]).map(String);
      const actual = context[key.toLowerCase()];
      if (actual === undefined) {
        // IAM: a missing key fails positive operators and satisfies negated ones; IfExists satisfies both.
        if (ifExists || op.negated) continue;
        return 'no-match';
      }
      const any = patterns.some((p) => op.test(p, actual));
      if (op.negated ? any : !any) return 'no-match';
    }
  }
  return 'match';
}

function statementApplies(s: PolicyStatement, req: AuthzRequest): boolean {
  const actionHit = (patterns: readonly string[]) => patterns.some((p) => wildcardMatch(p, req.action, true));
  const resourceHit = (patterns: readonly string[]) => patterns.some((p) => wildcardMatch(p, req.resource, false));
  if (s.Action !== undefined ? !actionHit(list(s.Action)) : actionHit(list(s.NotAction ?? []))) return false;
  if (s.Resource !== undefined ? !resourceHit(list(s.Resource)) : resourceHit(list(s.NotResource ?? []))) return false;
  if (!s.Condition) return true;
  const outcome = evaluateCondition(s.Condition, req.context);
  // Fail closed: an operator we cannot evaluate never lets an Allow grant, and always lets a Deny deny.
  if (outcome === 'unsupported') return s.Effect === 'Deny';
  return outcome === 'match';
}

/** Evaluates one policy document: an explicit Deny wins over any Allow; no match is an implicit deny. */
export function evaluatePolicy(policy: PolicyDocument, req: AuthzRequest): Decision {
  const statements = Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement];
  let allowed = false;
  for (const s of statements) {
    if (!statementApplies(s, req)) continue;
    if (s.Effect === 'Deny') return 'explicit-deny';
    allowed = true;
  }
  return allowed ? 'allow' : 'implicit-deny';
}

/**
 * The effective permission of a role session: the role's policy and, when present, the session policy
 * must both allow, and an explicit Deny in either denies (IAM's rule for session policies).
 */
export function evaluateSession(
  rolePolicy: PolicyDocument,
  sessionPolicy: PolicyDocument | undefined,
  req: AuthzRequest,
): { allowed: boolean; reason: string } {
  const role = evaluatePolicy(rolePolicy, req);
  const session = sessionPolicy ? evaluatePolicy(sessionPolicy, req) : 'allow';
  if (role === 'explicit-deny') return { allowed: false, reason: 'with an explicit deny in an identity-based policy' };
  if (session === 'explicit-deny') return { allowed: false, reason: 'with an explicit deny in a session policy' };
  if (role !== 'allow')
    return { allowed: false, reason: 'because no identity-based policy allows the ' + req.action + ' action' };
  if (session !== 'allow')
    return { allowed: false, reason: 'because no session policy allows the ' + req.action + ' action' };
  return { allowed: true, reason: '' };
}

/** Condition context for an EC2 instance resource: its tags under both SSM's and the global key. */
export function instanceContext(tags: Readonly<Record<string, string>>): Record<string, string> {
  const ctx: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) {
    ctx[`ssm:resourcetag/${k.toLowerCase()}`] = v;
    ctx[`aws:resourcetag/${k.toLowerCase()}`] = v;
  }
  return ctx;
}
