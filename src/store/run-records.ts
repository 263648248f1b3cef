/**
 * Every record of one run, read page by page: a run on thousands of instances writes a record per
 * instance and step, more than one page holds.
 */
import type { AuditRecord } from '../core/audit-chain.ts';
import type { AuditStore } from './audit-log.ts';

const PAGE = 10_000;

export async function runRecords(audit: Pick<AuditStore, 'list'>, executionId: string): Promise<AuditRecord[]> {
  const all: AuditRecord[] = [];
  for (;;) {
    const page = await audit.list({
      executionId,
      limit: PAGE,
      ...(all.length > 0 ? { afterSeq: all[all.length - 1]!.seq } : {}),
    });
    all.push(...page);
    if (page.length < PAGE) return all;
  }
}
