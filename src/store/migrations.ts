/**
 * Schema migrations, in code so the bundle needs no migration folder. Append new entries; never
 * edit one that has shipped (Kysely refuses to run when an executed migration is missing).
 */
import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely';

function isPostgres(db: Kysely<unknown>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/**
 * Makes a table refuse UPDATE, DELETE (and on PostgreSQL TRUNCATE) in the database itself. The
 * statements are exactly those the shipped migrations ran; only their text moved here.
 */
async function appendOnly(db: Kysely<unknown>, table: string, pgFunction: string): Promise<void> {
  const t = sql.raw(table);
  const message = sql.lit(`${table} is append-only`);
  if (isPostgres(db)) {
    const fn = sql.raw(pgFunction);
    await sql`
        create function ${fn}() returns trigger language plpgsql as $$
        begin
          raise exception '${sql.raw(`${table} is append-only`)}';
        end $$`.execute(db);
    await sql`
        create trigger ${sql.raw(`${table}_append_only`)} before update or delete on ${t}
        for each row execute function ${fn}()`.execute(db);
    await sql`
        create trigger ${sql.raw(`${table}_no_truncate`)} before truncate on ${t}
        for each statement execute function ${fn}()`.execute(db);
  } else {
    await sql`
        create trigger ${sql.raw(`${table}_no_update`)} before update on ${t}
        begin select raise(abort, ${message}); end`.execute(db);
    await sql`
        create trigger ${sql.raw(`${table}_no_delete`)} before delete on ${t}
        begin select raise(abort, ${message}); end`.execute(db);
  }
}

const auditLog: Migration = {
  async up(db: Kysely<unknown>) {
    const pg = isPostgres(db);
    await db.schema
      .createTable('audit_events')
      // SQLite: INTEGER PRIMARY KEY is the rowid; the store assigns seq itself under the write lock.
      .addColumn('seq', pg ? 'bigint' : 'integer', (c) => c.primaryKey())
      .addColumn('event_id', 'text', (c) => c.notNull().unique())
      .addColumn('execution_id', 'text')
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .addColumn('prev_hash', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addColumn('recorded_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('audit_events_execution').on('audit_events').columns(['execution_id', 'seq']).execute();

    // Defence in depth: the application has no update or delete path, and the database refuses
    // them too. Someone with the database's owner rights can drop these; the hash chain is what
    // makes that tampering visible.
    await appendOnly(db, 'audit_events', 'mechanic_audit_append_only');

    await db.schema
      .createTable('executions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('runbook_name', 'text', (c) => c.notNull())
      .addColumn('runbook_version', 'integer', (c) => c.notNull())
      .addColumn('operator', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('plan_digest', 'text', (c) => c.notNull())
      .addColumn('params', 'text', (c) => c.notNull())
      .addColumn('targets', 'text', (c) => c.notNull())
      .addColumn('approvals', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text')
      .execute();
    await db.schema.createIndex('executions_created').on('executions').columns(['created_at', 'id']).execute();
    await db.schema
      .createIndex('executions_status_created')
      .on('executions')
      .columns(['status', 'created_at', 'id'])
      .execute();
  },
};

/**
 * Signed checkpoints of the chain head (src/core/audit-checkpoint.ts): what lets verify see the
 * chain's end. Append-only like the log, for the same defence-in-depth reason.
 */
const auditCheckpoints: Migration = {
  async up(db: Kysely<unknown>) {
    const pg = isPostgres(db);
    await db.schema
      .createTable('audit_checkpoints')
      .addColumn('seq', pg ? 'bigint' : 'integer', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('signature', 'text', (c) => c.notNull())
      .addColumn('recorded_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('audit_checkpoints_pk', ['seq', 'key_id'])
      .execute();
    await appendOnly(db, 'audit_checkpoints', 'mechanic_audit_checkpoints_append_only');
  },
};

/**
 * The runbook registry (src/store/runbook-registry.ts): published versions, their reviews and
 * deprecations. All three are append-only: a published version never changes, and its history of
 * reviews is what an auditor reads.
 */
const runbookRegistry: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('runbook_versions')
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('digest', 'text', (c) => c.notNull())
      .addColumn('runbook', 'text', (c) => c.notNull())
      .addColumn('yaml', 'text', (c) => c.notNull())
      .addColumn('author', 'text', (c) => c.notNull())
      .addColumn('published_at', 'text', (c) => c.notNull())
      .addColumn('source_path', 'text', (c) => c.notNull())
      .addColumn('git_commit', 'text')
      .addColumn('git_clean', 'integer')
      .addPrimaryKeyConstraint('runbook_versions_pk', ['name', 'version'])
      .execute();
    await appendOnly(db, 'runbook_versions', 'mechanic_runbook_versions_append_only');

    await db.schema
      .createTable('runbook_reviews')
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('reviewer', 'text', (c) => c.notNull())
      .addColumn('digest', 'text', (c) => c.notNull())
      .addColumn('decision', 'text', (c) => c.notNull().check(sql`decision in ('approve', 'reject')`))
      .addColumn('comment', 'text', (c) => c.notNull())
      .addColumn('reviewed_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('runbook_reviews_pk', ['name', 'version', 'reviewer'])
      .addForeignKeyConstraint('runbook_reviews_version', ['name', 'version'], 'runbook_versions', ['name', 'version'])
      .execute();
    await appendOnly(db, 'runbook_reviews', 'mechanic_runbook_reviews_append_only');

    await db.schema
      .createTable('runbook_deprecations')
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('deprecated_by', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('deprecated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('runbook_deprecations_pk', ['name', 'version'])
      .addForeignKeyConstraint('runbook_deprecations_version', ['name', 'version'], 'runbook_versions', [
        'name',
        'version',
      ])
      .execute();
    await appendOnly(db, 'runbook_deprecations', 'mechanic_runbook_deprecations_append_only');
  },
};

/**
 * What the reporting UI filters runs by, indexed so a list page stays fast at a million events:
 * the executions index by runbook and by operator (newest first, as the pages read it), and two
 * side tables for the values an execution holds several of — its targets and its approvers — each
 * with the run's creation time, so "runs on i-0abc last week" and "runs bob approved" are one
 * index range each. The side tables are projections like the index itself: filled in the append's
 * transaction (audit-log.ts), backfilled here from the index for the runs already recorded.
 */
const runFilters: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createIndex('executions_runbook_created')
      .on('executions')
      .columns(['runbook_name', 'created_at', 'id'])
      .execute();
    await db.schema
      .createIndex('executions_operator_created')
      .on('executions')
      .columns(['operator', 'created_at', 'id'])
      .execute();
    await db.schema
      .createTable('execution_targets')
      .addColumn('instance_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('execution_id', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('execution_targets_pk', ['instance_id', 'created_at', 'execution_id'])
      .execute();
    await db.schema
      .createIndex('execution_targets_execution')
      .on('execution_targets')
      .columns(['execution_id'])
      .execute();
    await db.schema
      .createTable('execution_approvers')
      .addColumn('approver', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('execution_id', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('execution_approvers_pk', ['approver', 'created_at', 'execution_id'])
      .execute();
    await db.schema
      .createIndex('execution_approvers_execution')
      .on('execution_approvers')
      .columns(['execution_id'])
      .execute();
    // Backfill, a page at a time so a large index never sits in memory at once.
    type Row = { id: string; targets: string; approvals: string; created_at: string };
    const d = db as Kysely<{
      executions: Row;
      execution_targets: { instance_id: string; created_at: string; execution_id: string };
      execution_approvers: { approver: string; created_at: string; execution_id: string };
    }>;
    let after = '';
    for (;;) {
      const rows = await d
        .selectFrom('executions')
        .select(['id', 'targets', 'approvals', 'created_at'])
        .where('id', '>', after)
        .orderBy('id', 'asc')
        .limit(1000)
        .execute();
      if (rows.length === 0) break;
      const targets = rows.flatMap((r) =>
        [...new Set(JSON.parse(r.targets) as string[])].map((t) => ({
          instance_id: t,
          created_at: r.created_at,
          execution_id: r.id,
        })),
      );
      const approvers = rows.flatMap((r) =>
        [...new Set(JSON.parse(r.approvals) as string[])].map((a) => ({
          approver: a,
          created_at: r.created_at,
          execution_id: r.id,
        })),
      );
      for (let i = 0; i < targets.length; i += 200) {
        await d
          .insertInto('execution_targets')
          .values(targets.slice(i, i + 200))
          .execute();
      }
      for (let i = 0; i < approvers.length; i += 200) {
        await d
          .insertInto('execution_approvers')
          .values(approvers.slice(i, i + 200))
          .execute();
      }
      after = rows.at(-1)!.id;
    }
  },
};

export const migrations: Readonly<Record<string, Migration>> = {
  '0001_audit_log': auditLog,
  '0002_audit_checkpoints': auditCheckpoints,
  '0003_runbook_registry': runbookRegistry,
  '0004_run_filters': runFilters,
};
