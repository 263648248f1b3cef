import { loadConfig } from '../../src/config.ts';
import { AuditVerdictSchema, type AuditVerdict } from '../../src/core/audit-chain.ts';
import { keyIdOf, publicKeyPem } from '../../src/core/audit-checkpoint.ts';
import { UserError } from '../../src/core/errors.ts';
import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { formatAudit } from '../format.ts';
import { out } from '../output.ts';

const USAGE =
  'mechanic audit list [--execution id] [--limit n] [--as user] [--json] | mechanic audit verify [--as user] [--json] | mechanic audit key [--json]';

/** One or two lines on what verify found: which guarantee broke, or what the signed checkpoints cover. */
export function formatVerdict(verdict: AuditVerdict): string {
  if (!verdict.ok) {
    const what = {
      chain: 'hash chain',
      schema: 'audit vocabulary',
      checkpoint: 'signed checkpoints',
      index: 'execution index',
    };
    return `audit chain BROKEN (${what[verdict.check]}) at record #${verdict.seq}: ${verdict.reason}`;
  }
  const intact = `audit chain intact: ${verdict.count} records; the index of ${verdict.executions} executions matches the log`;
  const cp = verdict.checkpoints;
  if (!cp) return `${intact}\ncheckpoints not checked: the server has no signing key`;
  if (!cp.latest) return `${intact}\nno signed checkpoint yet`;
  return `${intact}\nsigned through #${cp.latest.seq} at ${cp.latest.at} by key ${cp.latest.keyId} (${cp.source === 'file' ? 'the copy outside the database' : 'database'}); ${cp.uncovered} newer records not yet signed`;
}

/** The public half of the signing key, for auditors to pin: it verifies every checkpoint. */
async function printKey(json: boolean): Promise<number> {
  const { keyFile } = loadConfig().audit;
  let pem: string;
  try {
    pem = await readFile(keyFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new UserError(
      'CONFIG_INVALID',
      `there is no audit signing key at ${keyFile} (MECHANIC_AUDIT_KEY_FILE); the worker and the API server make it when they first start`,
    );
  }
  // The public half is derived from the private key file; only the public half is printed.
  const publicKey = createPublicKey(pem);
  const key = { keyId: keyIdOf(publicKey), algorithm: 'Ed25519', publicKey: publicKeyPem(publicKey) };
  if (json) out.json(key);
  else out.line(`audit checkpoint key ${key.keyId} (Ed25519):\n${key.publicKey.trimEnd()}`);
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      execution: { type: 'string', short: 'e' },
      limit: { type: 'string' },
      as: { type: 'string' },
      json: { type: 'boolean' },
    },
    USAGE,
  );
  const [sub, ...extra] = positionals;
  if (extra.length || (sub !== 'list' && sub !== 'verify' && sub !== 'key')) {
    throw new UserError('USAGE', `usage: ${USAGE}`);
  }
  if (sub === 'key') return printKey(values.json === true);
  const api = await connectApi(loadConfig(), values.as);
  if (sub === 'verify') {
    const { verdict } = await api.call('verifyAudit');
    if (values.json) out.json(verdict);
    else {
      // A server older than checkpoints answers the plain chain verdict.
      const full = AuditVerdictSchema.safeParse(verdict);
      out.line(
        full.success
          ? formatVerdict(full.data)
          : verdict.ok
            ? `audit chain intact: ${verdict.count} records`
            : `audit chain BROKEN at record #${verdict.seq}: ${verdict.reason}`,
      );
    }
    return verdict.ok ? 0 : 1;
  }
  const { records } = await api.call('listAudit', {
    query: {
      ...(values.execution ? { executionId: values.execution } : {}),
      ...(values.limit ? { limit: values.limit } : {}),
    },
  });
  if (values.json) out.json(records);
  else out.line(formatAudit(records));
  return 0;
}
