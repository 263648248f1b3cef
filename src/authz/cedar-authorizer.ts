import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { UserError } from '../core/errors.ts';
import { approvingGroupCount, votingGroups } from '../core/approval.ts';
import {
  DESCRIBE,
  groupsOf,
  type Action,
  type Authorizer,
  type AuthzContext,
  type Decision,
  type Resource,
} from './authorizer.ts';
import type { User } from './users.ts';

/** The policies mechanic ships, and the schema every policy file is checked against. */
export const DEFAULT_POLICY_FILE = fileURLToPath(new URL('./cedar/policies.cedar', import.meta.url));
export const SCHEMA_FILE = fileURLToPath(new URL('./cedar/schema.cedarschema', import.meta.url));

/** One policy of a policy file, with the annotations mechanic reads. */
export interface PolicyInfo {
  readonly id: string;
  readonly effect: 'permit' | 'forbid';
  readonly text: string;
  /** The actions it names (empty: any action). */
  readonly actions: readonly string[];
  /** The group its principal must be in, when its scope says `principal in Group::"…"`. */
  readonly group: string | undefined;
  /** A forbid's sentence for the refused caller. */
  readonly reason: string | undefined;
  /** A permit's sentence for a caller who has its group but not its condition. */
  readonly denied: string | undefined;
}

/**
 * Splits a policy file into its policies and reads their annotations. Every policy needs a unique
 * @id: decisions record those ids, and a refusal that named "policy3" would tell nobody anything.
 */
export function parsePolicies(text: string, source: string): PolicyInfo[] {
  const parts = cedar.policySetTextToParts(text);
  if (parts.type === 'failure') {
    throw new UserError('CONFIG_INVALID', `the policy file ${source} does not parse: ${firstError(parts.errors)}`);
  }
  if (parts.policy_templates.length > 0) {
    throw new UserError(
      'CONFIG_INVALID',
      `the policy file ${source} has templates, which mechanic does not link; write plain policies`,
    );
  }
  const seen = new Set<string>();
  return parts.policies.map((policyText, i) => {
    const json = cedar.policyToJson(policyText);
    if (json.type === 'failure') {
      throw new UserError('CONFIG_INVALID', `policy ${i + 1} of ${source} does not parse: ${firstError(json.errors)}`);
    }
    const p = json.json;
    const id = p.annotations?.['id'];
    if (!id) {
      throw new UserError(
        'CONFIG_INVALID',
        `policy ${i + 1} of ${source} has no @id("…"); give every policy a unique id`,
      );
    }
    if (seen.has(id))
      throw new UserError('CONFIG_INVALID', `the policy id "${id}" is used twice in ${source}; make ids unique`);
    seen.add(id);
    const actions =
      p.action.op === '=='
        ? 'entity' in p.action
          ? [uidOf(p.action.entity).id]
          : []
        : p.action.op === 'in'
          ? 'entity' in p.action
            ? [uidOf(p.action.entity).id]
            : p.action.entities.map((e) => uidOf(e).id)
          : [];
    const principal = p.principal;
    const group =
      principal.op === 'in' && 'entity' in principal && uidOf(principal.entity).type === 'Group'
        ? uidOf(principal.entity).id
        : undefined;
    return {
      id,
      effect: p.effect,
      text: policyText,
      actions,
      group,
      reason: p.annotations?.['reason'] ?? undefined,
      denied: p.annotations?.['denied'] ?? undefined,
    };
  });
}

/**
 * Checks a policy file against the schema and returns its problems, one sentence each (empty when
 * it is valid). Cedar answers "success" with validation errors inside, so those are read too.
 */
export function validatePolicies(text: string, source: string, schema: string): string[] {
  let policies: PolicyInfo[];
  try {
    policies = parsePolicies(text, source);
  } catch (e) {
    if (e instanceof UserError) return [e.message];
    throw e;
  }
  const answer = cedar.validate({
    schema,
    policies: { staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])) },
    validationSettings: { mode: 'strict' },
  });
  if (answer.type === 'failure') return answer.errors.map((e) => `${source}: ${oneLine(e.message)}`);
  return answer.validationErrors.map(
    (v) =>
      `${source}, policy "${v.policyId}": ${oneLine(v.error.message)}${v.error.help ? ` (${oneLine(v.error.help)})` : ''}`,
  );
}

export interface CedarAuthorizerOptions {
  /** The policy file's text. */
  readonly policies: string;
  /** Where it came from, for messages. */
  readonly source: string;
  /** The schema's text; the policies must validate against it. */
  readonly schema: string;
}

let policySetCount = 0;

/**
 * An Authorizer that asks Cedar. The policies are validated against the schema and parsed once;
 * a policy file with any problem is refused here, so a server never starts with policies that do
 * not mean what they say.
 */
export function createCedarAuthorizer(
  options: CedarAuthorizerOptions,
): Authorizer & { readonly policies: readonly PolicyInfo[] } {
  const problems = validatePolicies(options.policies, options.source, options.schema);
  if (problems.length > 0) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    throw new UserError(
      'CONFIG_INVALID',
      `the policies do not validate against mechanic's schema: ${problems[0]}${more}; fix them and check with "mechanic policy validate"`,
    );
  }
  const policies = parsePolicies(options.policies, options.source);
  const byId = new Map(policies.map((p) => [p.id, p]));
  const policySetId = `mechanic-${++policySetCount}`;
  const parsed = cedar.preparsePolicySet(policySetId, {
    staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])),
  });
  if (parsed.type === 'failure') {
    throw new UserError(
      'CONFIG_INVALID',
      `the policy file ${options.source} does not parse: ${firstError(parsed.errors)}`,
    );
  }

  const explainDenial = (principal: User, action: Action, resource: Resource, forbids: readonly string[]): string => {
    for (const id of forbids) {
      const reason = byId.get(id)?.reason;
      if (reason) return fill(reason, principal, action, resource);
    }
    if (forbids.length > 0)
      return `${principal.id} may not ${DESCRIBE[action]}: policy ${forbids.join(', ')} forbids it`;
    const permits = policies.filter(
      (p) => p.effect === 'permit' && (p.actions.length === 0 || p.actions.includes(action)),
    );
    const member = new Set(groupsOf(principal));
    // The caller has the role a permit asks for but not its condition: that condition is the reason.
    for (const p of permits) {
      if (p.denied && (p.group === undefined || member.has(p.group)))
        return fill(p.denied, principal, action, resource);
    }
    const needs = [...new Set(permits.flatMap((p) => (p.group === undefined ? [] : [p.group])))];
    return `${principal.id} (${principal.roles.join(', ') || 'no role'}) may not ${DESCRIBE[action]}; ${
      needs.length > 0 ? `that needs the ${needs.join(' or ')} role` : 'no policy permits it'
    }`;
  };

  return {
    policies,
    authorize(principal, action, resource, context): Decision {
      const answer = cedar.statefulIsAuthorized({
        principal: { type: 'User', id: principal.id },
        action: { type: 'Action', id: action },
        resource: resourceUid(resource),
        context: contextOf(principal, action, resource, context),
        preparsedPolicySetId: policySetId,
        entities: entitiesOf(principal, resource),
      });
      if (answer.type === 'failure') {
        // Only a malformed request gets here (the policies were checked at start): refuse, and say so.
        return {
          allow: false,
          reason: `the policies could not decide whether ${principal.id} may ${DESCRIBE[action]}: ${firstError(answer.errors)}`,
          policies: [],
        };
      }
      const ids = answer.response.diagnostics.reason;
      if (answer.response.decision === 'allow') {
        return {
          allow: true,
          reason: `${principal.id} may ${DESCRIBE[action]} (policy ${ids.join(', ')})`,
          policies: ids,
        };
      }
      return { allow: false, reason: explainDenial(principal, action, resource, ids), policies: ids };
    },
  };
}

/** The default policies, or the file MECHANIC_POLICY_FILE names, with the shipped schema. */
export async function loadCedarAuthorizer(
  policyFile: string = DEFAULT_POLICY_FILE,
): Promise<Authorizer & { readonly policies: readonly PolicyInfo[] }> {
  return createCedarAuthorizer({
    policies: await readPolicyText(policyFile),
    source: policyFile,
    schema: await readFile(SCHEMA_FILE, 'utf8'),
  });
}

export async function readPolicyText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      'CONFIG_INVALID',
      `the policy file ${file} cannot be read (${code ?? 'unknown error'}); check MECHANIC_POLICY_FILE`,
    );
  }
}

type Uid = { type: string; id: string };
type Json = cedar.CedarValueJson;

function resourceUid(resource: Resource): Uid {
  switch (resource.kind) {
    case 'catalog':
      return { type: 'Catalog', id: 'runbooks' };
    case 'audit':
      return { type: 'AuditLog', id: 'audit' };
    case 'runbook':
      return { type: 'Runbook', id: resource.name };
    case 'execution':
      return { type: 'Execution', id: resource.id };
  }
}

const ref = (type: string, id: string): Json => ({ __entity: { type, id } });

function runbookEntity(
  r: Extract<Resource, { kind: 'runbook' }> | NonNullable<Extract<Resource, { kind: 'execution' }>['runbook']>,
) {
  return {
    uid: { type: 'Runbook', id: r.name },
    attrs: {
      owners: (r.owners ?? []).map((o) => ref('User', o)),
      risk: r.risk ?? 'low',
      environment: r.environment ?? '',
      tags: [...(r.tags ?? [])],
      approvalGroups: (r.approvalGroups ?? []).map((g) => ref('Group', g)),
    },
    parents: [],
  };
}

function entitiesOf(principal: User, resource: Resource): cedar.EntityJson[] {
  const entities: cedar.EntityJson[] = [
    {
      uid: { type: 'User', id: principal.id },
      attrs: {},
      parents: groupsOf(principal).map((g) => ({ type: 'Group', id: g })),
    },
  ];
  switch (resource.kind) {
    case 'catalog':
    case 'audit':
      entities.push({ uid: resourceUid(resource), attrs: {}, parents: [] });
      break;
    case 'runbook':
      entities.push(runbookEntity(resource));
      break;
    case 'execution': {
      const approvers = resource.approvers ?? [];
      const attrs: Record<string, Json> = {
        targets: [...(resource.targets ?? [])],
        approvals: resource.approvals ?? approvers.length,
        approvers: approvers.map((a) => ref('User', a.approver)),
        approvedGroups: [...new Set(resource.approvedGroups ?? approvers.flatMap((a) => a.groups))].map((g) =>
          ref('Group', g),
        ),
        approvalsRequired: resource.approvalsRequired ?? 1,
      };
      if (resource.requester !== undefined) attrs['requester'] = ref('User', resource.requester);
      if (resource.runbook !== undefined) {
        attrs['runbook'] = ref('Runbook', resource.runbook.name);
        entities.push(runbookEntity(resource.runbook));
      }
      entities.push({ uid: resourceUid(resource), attrs, parents: [] });
      break;
    }
  }
  return entities;
}

function contextOf(principal: User, action: Action, resource: Resource, context: AuthzContext): Record<string, Json> {
  const out: Record<string, Json> = {
    channel: context.channel,
    time: Math.floor((context.time ?? new Date()).getTime() / 1000),
  };
  const runbook = resource.kind === 'runbook' ? resource : resource.kind === 'execution' ? resource.runbook : undefined;
  if (runbook) out['risk'] = runbook.risk ?? 'low';
  if (action === 'approve' && resource.kind === 'execution' && resource.approvers !== undefined) {
    // Cedar cannot match approvers to distinct groups, so the one fact the two-groups rule needs is
    // computed here, by the same function the workflow's validator uses.
    const mine = votingGroups(groupsOf(principal), resource.runbook?.approvalGroups ?? []);
    out['approvingGroups'] = approvingGroupCount([...resource.approvers, { groups: mine }]);
  }
  return out;
}

function fill(template: string, principal: User, action: Action, resource: Resource): string {
  const values: Record<string, string> = {
    principal: principal.id,
    action: DESCRIBE[action],
    resource:
      resource.kind === 'catalog'
        ? 'the runbook catalog'
        : resource.kind === 'audit'
          ? 'the audit log'
          : resource.kind === 'runbook'
            ? resource.name
            : resource.id,
    requester: (resource.kind === 'execution' ? resource.requester : undefined) ?? 'someone else',
  };
  return template.replace(/\{(principal|action|resource|requester)\}/g, (_m, k: string) => values[k] ?? '');
}

function uidOf(e: cedar.EntityUidJson): Uid {
  return '__entity' in e ? e.__entity : e;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

function firstError(errors: readonly cedar.DetailedError[]): string {
  const e = errors[0];
  return e ? oneLine(e.message) : 'no details';
}
