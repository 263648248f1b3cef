/**
 * `mechanic audit pack <execution> --out <file>`: one run's evidence pack from the API, written whole
 * (a temporary file renamed into place, owner-only) so a failed download leaves no half-written pack.
 * `mechanic audit verify-pack <file> [--key <public key file>]`: checks a pack offline — no server, no
 * database, only the public key (src/core/evidence-pack.ts says what is checked and why it is sound).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { loadConfig } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import {
  serializeEvidencePack,
  verifyEvidencePack,
  type PackSummary,
  type PackVerdict,
} from '../../src/core/evidence-pack.ts';
import { formatProblem, lintRunbookText } from '../../src/core/lint.ts';
import { neutralize } from '../../src/core/text.ts';
import { writePrivateFile } from '../../src/host.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { out } from '../output.ts';

export const PACK_USAGE =
  'mechanic audit pack <execution> --out <file> [--as user] [--json] | mechanic audit verify-pack <file> [--key <public key file>] [--json]';

/** What the pack proves, in a few lines. */
export function formatPackSummary(s: PackSummary): string {
  const votes = `${s.votes.approvals} approval(s), ${s.votes.rejections} rejection(s)${s.votes.forOtherPlans > 0 ? `, ${s.votes.forOtherPlans} for another plan` : ''}`;
  const key =
    s.keySource === 'given'
      ? `verified with the key you gave (${s.checkpoint.keyId})`
      : `verified with the key inside the pack (${s.checkpoint.keyId}); compare it with "mechanic audit key" or pass --key, or a forger's own key would pass too`;
  return [
    `${s.executionId}: ${s.runbook.name}@${s.runbook.version} (digest ${s.runbook.digest.slice(0, 12)}, the one its plan ${s.planDigest.slice(0, 12)} pinned), ${s.status}`,
    `${s.events} events and ${votes}; records #${s.proof.from}–#${s.proof.to} (${s.proof.records}) rehashed`,
    `signed checkpoint of #${s.checkpoint.seq} at ${s.checkpoint.at}, ${key}`,
  ].join('\n');
}

/** The public key from a PEM file, or from the JSON `mechanic audit key --json` prints. */
async function readPublicKey(file: string): Promise<KeyObject> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UserError('USAGE', `cannot read the key file ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let pem = text;
  if (text.trimStart().startsWith('{')) {
    try {
      const field = (JSON.parse(text) as { publicKey?: unknown }).publicKey;
      pem = typeof field === 'string' ? field : '';
    } catch {
      pem = '';
    }
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new UserError(
      'USAGE',
      `${file} holds no public key; save the output of "mechanic audit key" (PEM) or "mechanic audit key --json"`,
    );
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new UserError('USAGE', `${file} holds no Ed25519 public key`);
  return key;
}

/** Verifies the pack in `file`; with `key`, against that key only. */
export async function verifyPackFile(file: string, key: KeyObject | undefined): Promise<PackVerdict> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UserError('USAGE', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return {
      ok: false,
      problem: `${file} is not JSON, so it is not an evidence pack (or it was cut short or changed)`,
    };
  }
  return verifyEvidencePack(value, {
    ...(key ? { publicKey: key } : {}),
    // The registry's reading of a runbook file (hidden characters, YAML, the schema), without the registry.
    parseRunbookYaml: (yaml) => {
      const read = lintRunbookText('runbook.yaml', yaml);
      if (!read.runbook) throw new Error(read.problems[0] ? formatProblem(read.problems[0]) : 'it is not a runbook');
      return read.runbook;
    },
  });
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { out: { type: 'string', short: 'o' }, key: { type: 'string' }, as: { type: 'string' }, json: { type: 'boolean' } },
    PACK_USAGE,
  );
  const [sub, target, ...extra] = positionals;
  if (target === undefined || extra.length > 0) throw new UserError('USAGE', `usage: ${PACK_USAGE}`);
  if (sub === 'verify-pack') {
    if (values.out !== undefined || values.as !== undefined) throw new UserError('USAGE', `usage: ${PACK_USAGE}`);
    const key = values.key === undefined ? undefined : await readPublicKey(values.key);
    const verdict = await verifyPackFile(target, key);
    if (values.json) out.json(verdict);
    else if (verdict.ok)
      out.line(`evidence pack OK\n${neutralize(formatPackSummary(verdict.summary), { multiline: true })}`);
    // The problem can quote ids from the file: shown inert.
    else out.line(`evidence pack BROKEN: ${neutralize(verdict.problem)}`);
    return verdict.ok ? 0 : 1;
  }
  if (sub !== 'pack' || values.key !== undefined) throw new UserError('USAGE', `usage: ${PACK_USAGE}`);
  if (values.out === undefined)
    throw new UserError('USAGE', `say where to write the pack with --out <file>; usage: ${PACK_USAGE}`);
  const api = await connectApi(loadConfig(), values.as);
  const pack = await api.call('executionPack', { params: { id: target } });
  await writePrivateFile(values.out, serializeEvidencePack(pack));
  const summary = {
    file: values.out,
    executionId: pack.executionId,
    events: pack.events.length,
    proof: { from: pack.proof.from, to: pack.proof.to },
    checkpoint: { seq: pack.checkpoint.seq, keyId: pack.checkpoint.keyId },
  };
  if (values.json) out.json(summary);
  else {
    out.line(
      `wrote the evidence pack of ${pack.executionId} to ${values.out}: ${summary.events} events, records #${summary.proof.from}–#${summary.proof.to}, signed checkpoint of #${summary.checkpoint.seq} by key ${summary.checkpoint.keyId}\ncheck it anywhere with: mechanic audit verify-pack ${values.out} --key <the key from mechanic audit key>`,
    );
  }
  return 0;
}
