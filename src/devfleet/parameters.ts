import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ParameterRecord, StateStore } from './state.ts';
import { AwsError, epochSeconds } from './wire.ts';

/**
 * devfleet's SSM Parameter Store: GetParameter and PutParameter with AWS's names, types, versions
 * and errors, authorized like every other SSM call (the caller's role and session policies must
 * allow ssm:GetParameter / ssm:PutParameter on the parameter's ARN). Runbooks reference secrets
 * by name; the instance reads them with its own role through the `aws` shim. Seeds come from the
 * fleet file (`parameters`), for development: the value of a seeded SecureString is in that file.
 */

/** AWS's rules for a parameter name: 1–2048 of a-zA-Z0-9_.-/, a hierarchy starts with "/", at most 15 levels. */
const NAME_RE = /^\/?[a-zA-Z0-9_.\-/]{1,2048}$/;
const MAX_VALUE_CHARS = 4096;

/** Why a name is not one Parameter Store accepts; undefined when it is. */
export function parameterNameProblem(name: string): string | undefined {
  if (!NAME_RE.test(name)) return 'Parameter name: can only include a-zA-Z0-9_.-/ and be 1 to 2048 characters';
  if (name.includes('/') && !name.startsWith('/')) return 'Parameter name must be a fully qualified name.';
  if (name.includes('//') || (name.length > 1 && name.endsWith('/'))) return 'Parameter name has an empty level.';
  if (name.split('/').length - 1 > 15) return 'Parameter name has more than 15 levels (hierarchy too deep).';
  // The aws and ssm prefixes are AWS's own (public parameters); nobody may create them.
  if (/^\/?(aws|ssm)/i.test(name)) return 'No access to reserved parameter name: aws or ssm prefix.';
  return undefined;
}

export const ParameterSeedSchema = z.strictObject({
  name: z.string().refine((n) => parameterNameProblem(n) === undefined, {
    message: 'must be a Parameter Store name like /prod/db/password (a-zA-Z0-9_.-/, not starting with aws or ssm)',
  }),
  /** SecureString by default: a seeded parameter stands for a secret more often than not. */
  type: z.enum(['String', 'StringList', 'SecureString']).default('SecureString'),
  value: z.string().min(1).max(MAX_VALUE_CHARS),
  description: z.string().max(1024).optional(),
});
export type ParameterSeed = z.infer<typeof ParameterSeedSchema>;

const GetParameterSchema = z.object({ Name: z.string().min(1).max(2048), WithDecryption: z.boolean().optional() });
const PutParameterSchema = z.object({
  Name: z.string().min(1).max(2048),
  Value: z.string().min(1).max(MAX_VALUE_CHARS),
  Type: z.enum(['String', 'StringList', 'SecureString']).optional(),
  Overwrite: z.boolean().optional(),
  Description: z.string().max(1024).optional(),
  KeyId: z.string().max(256).optional(),
  Tier: z.enum(['Standard', 'Advanced', 'Intelligent-Tiering']).optional(),
  DataType: z.string().optional(),
});

export interface ParameterDeps {
  readonly store: StateStore;
  readonly region: string;
  readonly accountId: string;
  readonly now: () => number;
  /** Throws AccessDeniedException unless the caller may do `action` on `resource`. */
  readonly require: (action: string, resource: string) => void;
  /** The caller's ARN, recorded as LastModifiedUser. */
  readonly callerArn: string;
}

function validation(message: string): AwsError {
  return new AwsError('ValidationException', `1 validation error detected: ${message}`);
}

/** The parameter's ARN, as IAM policies name it: `…:parameter/prod/db` for both `/prod/db` and `prod/db`. */
export function parameterArn(region: string, accountId: string, name: string): string {
  return `arn:aws:ssm:${region}:${accountId}:parameter${name.startsWith('/') ? '' : '/'}${name}`;
}

/** GetParameter accepts a name or the parameter's ARN. */
function nameOf(region: string, accountId: string, given: string): string {
  const prefix = `arn:aws:ssm:${region}:${accountId}:parameter`;
  if (!given.startsWith('arn:')) return given;
  if (!given.startsWith(prefix)) throw validation(`Parameter ARN ${given} is not in this account and region.`);
  const rest = given.slice(prefix.length);
  // An ARN cannot tell "/x" from "x" for a name outside a hierarchy; AWS resolves the plain one.
  return rest.lastIndexOf('/') === 0 ? rest.slice(1) : rest;
}

/**
 * What GetParameter shows for a SecureString read without decryption: AWS returns the KMS
 * ciphertext, never the value; devfleet returns an opaque stand-in derived from it.
 */
function ciphertext(p: ParameterRecord): string {
  return Buffer.from(
    `devfleet-kms:${createHash('sha256').update(`${p.name}:${p.version}:${p.value}`).digest('hex')}`,
  ).toString('base64');
}

export function getParameter(deps: ParameterDeps, raw: unknown) {
  const r = GetParameterSchema.safeParse(raw);
  if (!r.success) throw validation("Value at 'name' failed to satisfy constraint: Member must not be null");
  const name = nameOf(deps.region, deps.accountId, r.data.Name);
  const arn = parameterArn(deps.region, deps.accountId, name);
  // Authorized before the look-up, as AWS does: a caller without permission cannot probe which names exist.
  deps.require('ssm:GetParameter', arn);
  const p = deps.store.parameters.get(name);
  if (!p) throw new AwsError('ParameterNotFound', '');
  const decrypt = r.data.WithDecryption === true;
  return {
    Parameter: {
      Name: p.name,
      Type: p.type,
      Value: p.type === 'SecureString' && !decrypt ? ciphertext(p) : p.value,
      Version: p.version,
      LastModifiedDate: epochSeconds(p.lastModifiedMs),
      ARN: arn,
      DataType: 'text',
    },
  };
}

export async function putParameter(deps: ParameterDeps, raw: unknown) {
  const r = PutParameterSchema.safeParse(raw);
  if (!r.success)
    throw validation(`Value at 'name' or 'value' failed to satisfy constraint: ${r.error.issues[0]?.message ?? ''}`);
  const input = r.data;
  const problem = parameterNameProblem(input.Name);
  if (problem !== undefined) {
    throw problem.startsWith('No access') ? new AwsError('AccessDeniedException', problem) : validation(problem);
  }
  deps.require('ssm:PutParameter', parameterArn(deps.region, deps.accountId, input.Name));
  const old = deps.store.parameters.get(input.Name);
  if (old && input.Overwrite !== true) {
    throw new AwsError(
      'ParameterAlreadyExists',
      'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.',
    );
  }
  const type = input.Type ?? old?.type;
  if (type === undefined) throw validation('A parameter type is required when you create a parameter.');
  if (old && input.Type !== undefined && input.Type !== old.type && old.type === 'SecureString') {
    throw new AwsError('HierarchyTypeMismatchException', 'The parameter type cannot be changed from SecureString.');
  }
  const record: ParameterRecord = {
    name: input.Name,
    type,
    value: input.Value,
    version: (old?.version ?? 0) + 1,
    lastModifiedMs: deps.now(),
    lastModifiedUser: deps.callerArn,
    ...(input.Description !== undefined
      ? { description: input.Description }
      : old?.description !== undefined
        ? { description: old.description }
        : {}),
  };
  if (deps.store.isClosed) throw new AwsError('ServiceUnavailable', 'devfleet is shutting down.', 503);
  deps.store.parameters.set(record.name, record);
  deps.store.markDirty();
  await deps.store.flush();
  return { Version: record.version, Tier: 'Standard' };
}

/**
 * Puts the fleet file's parameters into the store at start: a new one at version 1, a changed one
 * (value, type or description) as its next version, an unchanged one left alone.
 */
export function seedParameters(store: StateStore, seeds: readonly ParameterSeed[], now: number): void {
  for (const seed of seeds) {
    const old = store.parameters.get(seed.name);
    if (old && old.value === seed.value && old.type === seed.type && old.description === seed.description) continue;
    store.parameters.set(seed.name, {
      name: seed.name,
      type: seed.type,
      value: seed.value,
      version: (old?.version ?? 0) + 1,
      lastModifiedMs: now,
      lastModifiedUser: 'devfleet fleet file',
      ...(seed.description !== undefined ? { description: seed.description } : {}),
    });
    store.markDirty();
  }
}
