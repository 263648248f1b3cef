/**
 * Reads what an evidence pack of one run holds (src/core/evidence-pack.ts): the run's events and the
 * records between them, up to the earliest checkpoint signed by the server's key that covers the run's
 * last event, and the runbook version the run pinned, from the registry.
 */
import type { KeyObject } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { buildEvidencePack, type EvidencePack, type PackRecord } from '../core/evidence-pack.ts';
import { UserError } from '../core/errors.ts';
import type { AuditStore } from './audit-log.ts';
import type { AuditEventsTable, Database } from './schema.ts';

/** A pack holds the whole segment in memory: beyond this, the export is the tool. */
export const MAX_PACK_RECORDS = 200_000;

export interface EvidenceSource {
  /** The evidence pack of one run, made for `createdBy`. */
  pack(executionId: string, createdBy: string): Promise<EvidencePack>;
}

export interface EvidenceDeps {
  /** Signs the head when no checkpoint covers the run's last event yet (a run still going). */
  readonly audit: Pick<AuditStore, 'checkpoint'>;
  /**
   * The public keys whose checkpoints a pack may end at, by key id (the store's trusted keys: its own
   * signing key, and older ones after a rotation). The pack carries the one that signed.
   */
  readonly keys: ReadonlyMap<string, KeyObject>;
  readonly maxRecords?: number;
  readonly now?: () => Date;
}

function toRecord(row: Selectable<AuditEventsTable>): PackRecord {
  return {
    seq: Number(row.seq),
    eventId: row.event_id,
    executionId: row.execution_id,
    type: row.type,
    actor: row.actor,
    at: row.at,
    data: JSON.parse(row.data) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
    recordedAt: row.recorded_at,
  };
}

export function createEvidenceSource(db: Kysely<Database>, deps: EvidenceDeps): EvidenceSource {
  const keyIds = [...deps.keys.keys()];
  const max = deps.maxRecords ?? MAX_PACK_RECORDS;

  /** The earliest checkpoint of a known key at or after `seq`. */
  async function covering(seq: number) {
    if (keyIds.length === 0) return undefined;
    const row = await db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('key_id', 'in', keyIds)
      .where('seq', '>=', seq)
      .orderBy('seq', 'asc')
      .limit(1)
      .executeTakeFirst();
    return row
      ? { seq: Number(row.seq), hash: row.hash, at: row.at, keyId: row.key_id, signature: row.signature }
      : undefined;
  }

  return {
    async pack(executionId, createdBy) {
      const span = await db
        .selectFrom('audit_events')
        .select((eb) => [eb.fn.min('seq').as('first'), eb.fn.max('seq').as('last')])
        .where('execution_id', '=', executionId)
        .executeTakeFirst();
      if (span?.first === null || span?.first === undefined || span.last === null) {
        throw new UserError('EXECUTION_NOT_FOUND', `the audit log has no execution ${executionId}`);
      }
      const first = Number(span.first);
      const last = Number(span.last);
      // A run still going may have events no checkpoint covers yet: sign the head now.
      const checkpoint = (await covering(last)) ?? (await deps.audit.checkpoint(), await covering(last));
      if (keyIds.length === 0) {
        throw new UserError(
          'CONFIG_INVALID',
          'this server signs no checkpoints of the audit log (it has no audit signing key), so no evidence pack can be proven',
        );
      }
      if (!checkpoint) {
        throw new UserError(
          'SERVER_UNAVAILABLE',
          `no signed checkpoint covers record #${last} of ${executionId} yet; the server signs the log within a minute, so try again then`,
        );
      }
      const publicKey = deps.keys.get(checkpoint.keyId)!;
      const count = checkpoint.seq - first + 1;
      if (count > max) {
        throw new UserError(
          'USAGE',
          `the evidence of ${executionId} spans ${count} records of the log (#${first} to #${checkpoint.seq}), more than the ${max} a pack holds; export that range with mechanic audit export instead`,
        );
      }
      const segment = (
        await db
          .selectFrom('audit_events')
          .selectAll()
          .where('seq', '>=', first)
          .where('seq', '<=', checkpoint.seq)
          .orderBy('seq', 'asc')
          .execute()
      ).map(toRecord);
      const request = segment[0];
      const pinned = (
        request?.data as { runbook?: { name?: unknown; version?: unknown; digest?: unknown } } | undefined
      )?.runbook;
      if (request?.type !== 'execution.requested' || typeof pinned?.name !== 'string') {
        throw new UserError(
          'AUDIT_CHAIN_BROKEN',
          `the first record of ${executionId} (#${first}) is not its request, so its runbook cannot be found; run mechanic audit verify`,
        );
      }
      const version = Number(pinned.version);
      const row = await db
        .selectFrom('runbook_versions')
        .select(['name', 'version', 'digest', 'yaml', 'runbook'])
        .where('name', '=', pinned.name)
        .where('version', '=', version)
        .executeTakeFirst();
      if (!row) {
        throw new UserError(
          'RUNBOOK_NOT_FOUND',
          `the registry holds no ${pinned.name}@${version}, the runbook version ${executionId} ran, so its evidence cannot be packed`,
        );
      }
      if (row.digest !== pinned.digest) {
        throw new UserError(
          'AUDIT_CHAIN_BROKEN',
          `the registry's ${pinned.name}@${version} has digest ${row.digest.slice(0, 12)}, not the ${String(pinned.digest).slice(0, 12)} ${executionId} pinned; the registry was changed`,
        );
      }
      return buildEvidencePack({
        executionId,
        createdAt: (deps.now?.() ?? new Date()).toISOString(),
        createdBy,
        runbook: {
          name: row.name,
          version: Number(row.version),
          digest: row.digest,
          yaml: row.yaml,
          definition: JSON.parse(row.runbook) as Record<string, unknown>,
        },
        segment,
        checkpoint,
        publicKey,
      });
    },
  };
}
