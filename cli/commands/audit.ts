import { loadConfig } from '../../src/config.ts';
import { AuditVerdictSchema, type AuditVerdict } from '../../src/core/audit-chain.ts';
import { keyIdOf, publicKeyPem } from '../../src/core/audit-checkpoint.ts';
import { UserError } from '../../src/core/errors.ts';
import { createPublicKey } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExecutionIdSchema, type AuditRecordInfo } from '../../src/api/schemas.ts';
import type { ApiClient } from '../../src/api/client.ts';
import { AUDIT_EXPORT_FORMATS, exportRange, type AuditExportFormat } from '../../src/core/audit-export.ts';
import { neutralize } from '../../src/core/text.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { formatAudit } from '../format.ts';
import { out } from '../output.ts';

const USAGE =
  'mechanic audit list [--execution id] [--limit n] [--as user] [--json] | mechanic audit show <execution> [--as user] [--json] | mechanic audit verify [--all-signatures] [--as user] [--json] | mechanic audit export --format jsonl|csv|ocsf|parquet [--since ISO] [--until ISO] [--execution id] [--out file] [--as user] [--json] | mechanic audit report [--since day|ISO] [--until day|ISO] [--as user] [--json] | mechanic audit key [--json] | mechanic audit pack <execution> --out <file> [--as user] [--json] | mechanic audit verify-pack <file> [--key <public key file>] [--json]';

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
  const signatures =
    cp.signaturesChecked === undefined
      ? ''
      : `; ${cp.signaturesChecked} of ${cp.checked} checkpoint signatures checked${cp.signaturesChecked < cp.checked ? ' (the newest; --all-signatures checks every one)' : ''}`;
  return `${intact}\nsigned through #${cp.latest.seq} at ${cp.latest.at} by key ${cp.latest.keyId} (${cp.source === 'file' ? 'the copy outside the database' : 'database'}); ${cp.uncovered} newer records not yet signed${signatures}`;
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
  // Evidence packs (cli/commands/audit-pack.ts): their own options (--out, --key).
  if (argv[0] === 'pack' || argv[0] === 'verify-pack') return (await import('./audit-pack.ts')).run(argv);
  // Reports (cli/commands/audit-report.ts): what to fix next and the runs to look at.
  if (argv[0] === 'report') return (await import('./audit-report.ts')).run(argv);
  const { values, positionals } = parse(
    argv,
    {
      execution: { type: 'string', short: 'e' },
      limit: { type: 'string' },
      as: { type: 'string' },
      json: { type: 'boolean' },
      format: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      out: { type: 'string', short: 'o' },
      'all-signatures': { type: 'boolean' },
    },
    USAGE,
  );
  const [sub, ...extra] = positionals;
  const usage = () => new UserError('USAGE', `usage: ${USAGE}`);
  if (sub === 'show') {
    if (extra.length !== 1) throw new UserError('USAGE', `name one execution; usage: mechanic audit show <execution>`);
    const id = executionId(extra[0]!);
    const api = await connectApi(loadConfig(), values.as);
    const records = await executionRecords(api, id);
    if (records.length === 0) {
      throw new UserError('EXECUTION_NOT_FOUND', `the audit log has no records of execution ${neutralize(id)}`);
    }
    if (values.json) out.json(records);
    else out.line(formatTimeline(records));
    return 0;
  }
  if (sub === 'export') {
    if (extra.length) throw usage();
    return exportAudit(values);
  }
  if (extra.length || (sub !== 'list' && sub !== 'verify' && sub !== 'key')) throw usage();
  if (values['all-signatures'] && sub !== 'verify')
    throw new UserError('USAGE', `--all-signatures is an option of mechanic audit verify; usage: ${USAGE}`);
  if (sub === 'key') return printKey(values.json === true);
  if (values.execution !== undefined) executionId(values.execution);
  const api = await connectApi(loadConfig(), values.as);
  if (sub === 'verify') {
    // By default the server checks the newest checkpoint's signature, which with the chain proves
    // every record up to it; --all-signatures also checks every older one (a forged row buried below).
    const { verdict } = await api.call('verifyAudit', {
      query: values['all-signatures'] ? { allSignatures: 'true' } : {},
    });
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

/** A well-formed execution id, or one sentence saying what one looks like. */
function executionId(value: string): string {
  if (!ExecutionIdSchema.safeParse(value).success) {
    throw new UserError(
      'USAGE',
      `"${neutralize(value.slice(0, 100))}" is not an execution id; they look like mx-ab12cd34ef (see mechanic audit list)`,
    );
  }
  return value;
}

/** Every record of one execution, in chain order, page by page. */
async function executionRecords(api: ApiClient, id: string): Promise<AuditRecordInfo[]> {
  const records: AuditRecordInfo[] = [];
  const limit = 10_000;
  for (;;) {
    const after = records.at(-1)?.seq;
    const { records: page } = await api.call('listAudit', {
      query: { executionId: id, limit, ...(after !== undefined ? { afterSeq: after } : {}) },
    });
    records.push(...page);
    if (page.length < limit) return records;
  }
}

/** "+1h02m03s" after the first record: how long each part of a run took to happen. */
function elapsed(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '';
  const s = Math.floor(ms / 1000);
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `+${h}h${pad(m)}m${pad(sec)}s` : m > 0 ? `+${m}m${pad(sec)}s` : `+${sec}s`;
}

/**
 * One run's records as a timeline: what was asked (runbook, targets, reason), then each event
 * with its time, the time since the request, who and what, in the order they were recorded.
 * Everything people typed is shown inert.
 */
export function formatTimeline(records: readonly AuditRecordInfo[]): string {
  const t = (v: unknown) => neutralize(typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
  const first = records[0];
  if (!first) return 'no audit records';
  const start = Date.parse(first.at);
  const requested = records.find((r) => r.type === 'execution.requested');
  const head: string[] = [`execution ${t(first.executionId ?? '-')}`];
  if (requested) {
    const d = requested.data;
    const rb = (d['runbook'] ?? {}) as Record<string, unknown>;
    head.push(
      `  runbook  ${t(rb['name'])}@${t(rb['version'])}`,
      `  by       ${t(d['requester'])}: "${t(d['reason'])}"`,
      `  targets  ${Array.isArray(d['targets']) ? d['targets'].map(t).join(', ') : '-'}`,
      `  plan     ${t(d['planDigest'])}`,
    );
  }
  const lines = records.map((r) => {
    const d = r.data;
    const detail =
      r.type === 'approval.granted' || r.type === 'approval.rejected'
        ? `plan ${t(String(d['planDigest']).slice(0, 12))}${typeof d['comment'] === 'string' ? ` "${t(d['comment'])}"` : ''}`
        : r.type === 'credentials.issued'
          ? `key ${t(d['accessKeyId'])} until ${t(d['expiration'])}, policy ${t(String(d['policyDigest']).slice(0, 12))}`
          : r.type === 'step.instance'
            ? `${t(d['step'])} on ${t(d['instanceId'])}: ${t(d['status'])} (exit ${t(d['responseCode'])})`
            : r.type === 'step.completed'
              ? `${t(d['step'])} ${d['ok'] === true ? 'ok' : 'failed'}`
              : typeof d['step'] === 'string'
                ? t(d['step'])
                : typeof d['reason'] === 'string' && r.type !== 'execution.requested'
                  ? t(d['reason'])
                  : '';
    return `#${String(r.seq).padEnd(6)} ${t(r.at)}  ${elapsed(Date.parse(r.at) - start).padEnd(10)} ${t(r.type).padEnd(20)} ${t(r.actor).padEnd(10)} ${detail}`.trimEnd();
  });
  return [...head, '', ...lines].join('\n');
}

function exportFormat(value: string | undefined): AuditExportFormat {
  const format = AUDIT_EXPORT_FORMATS.find((f) => f === value);
  if (format) return format;
  throw new UserError(
    'USAGE',
    value === undefined
      ? `name the format with --format ${AUDIT_EXPORT_FORMATS.join('|')}`
      : `--format must be one of ${AUDIT_EXPORT_FORMATS.join(', ')}, got "${neutralize(value.slice(0, 50))}"`,
  );
}

/**
 * Streams an export from the server to --out (or stdout) without holding it: the response body is
 * piped as it arrives. A file is written beside its destination and renamed only once whole, so a
 * failed export leaves no half-written file behind.
 */
async function exportAudit(values: {
  format?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  execution?: string | undefined;
  out?: string | undefined;
  as?: string | undefined;
  json?: boolean | undefined;
}): Promise<number> {
  const format = exportFormat(values.format);
  exportRange({ since: values.since, until: values.until });
  if (values.execution !== undefined) executionId(values.execution);
  if (format === 'parquet' && values.out === undefined) {
    throw new UserError('USAGE', 'Parquet is binary: name the file to write with --out <file>');
  }
  const api = await connectApi(loadConfig(), values.as);
  const { body } = await api.download('auditExport', {
    format,
    ...(values.since !== undefined ? { since: values.since } : {}),
    ...(values.until !== undefined ? { until: values.until } : {}),
    ...(values.execution !== undefined ? { execution: values.execution } : {}),
  });
  const source = Readable.fromWeb(body);
  const cutOff = (dest: string) =>
    new UserError(
      'SERVER_UNAVAILABLE',
      `the server stopped the export part-way (its log says why)${dest}; run the export again`,
    );
  if (values.out === undefined) {
    try {
      // The export is passed through as it streams: text formats to stdout, unchanged.
      await pipeline(source, process.stdout, { end: false });
    } catch {
      throw cutOff('');
    }
    return 0;
  }
  const target = path.resolve(values.out);
  const partial = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.partial`);
  try {
    await pipeline(source, createWriteStream(partial, { mode: 0o600 }));
  } catch (e) {
    await rm(partial, { force: true });
    if ((e as NodeJS.ErrnoException).code && (e as NodeJS.ErrnoException).syscall) {
      throw new UserError('USAGE', `cannot write ${values.out}: ${(e as Error).message}`);
    }
    throw cutOff(`; nothing was written to ${values.out}`);
  }
  await rename(partial, target);
  // Without --out the export itself is the machine-readable output; with it, --json says what was written.
  if (values.json) out.json({ file: target, format, bytes: (await stat(target)).size });
  else out.info(`wrote ${values.out} (${format})`);
  return 0;
}
