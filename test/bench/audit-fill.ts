/**
 * A million-event audit log, generated straight into SQLite in one transaction: a real hash
 * chain, the executions index and its side tables as the store would project them, and — when a
 * signer is given — the signed checkpoints the real store writes (one at every execution's end,
 * and at least every 100 records). Shared by the benches that need a big log (bench:web,
 * bench:verify), so they measure the same shape of data. Deterministic: two fills hold the same
 * events (checkpoint signatures aside, which carry the event's time, not the clock's).
 */
import { performance } from 'node:perf_hooks';
import SQLite from 'better-sqlite3';
import { GENESIS_HASH, chainHash } from '../../src/core/audit-chain.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import { endStatusOf } from '../../src/core/audit-events.ts';
import type { CheckpointSigner } from '../../src/core/audit-checkpoint.ts';
import { canonicalJson } from '../../src/core/canonical.ts';
import { openDatabase } from '../../src/store/db.ts';
import { runEvents } from '../helpers/web-ui.ts';

export const RUNBOOKS = [
  'deploy-web',
  'rotate-logs',
  'restart-service',
  'flush-cache',
  'patch-packages',
  'free-disk-space',
];
export const PEOPLE = Array.from({ length: 20 }, (_, i) => `person${String(i).padStart(2, '0')}`);
export const INSTANCES = Array.from({ length: 300 }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);
/** What the real store uses: a checkpoint at least every this many records (audit-log.ts). */
const CHECKPOINT_EVERY_RECORDS = 100;

/** A small deterministic generator, so two runs of the bench fill the same log. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export interface FillOptions {
  /** How many events (the last run is completed even if that goes a few over). */
  readonly events: number;
  /** Signs checkpoints as the real store does; without it the log has none. */
  readonly signer?: CheckpointSigner;
}

export interface Filled {
  runs: number;
  events: number;
  checkpoints: number;
  ms: number;
}

/** Creates the store's schema in `file` (a new SQLite database) and fills it. */
export async function fillAuditLog(file: string, options: FillOptions): Promise<Filled> {
  const db = await openDatabase({ kind: 'sqlite', file });
  await db.destroy();
  const sqlite = new SQLite(file);
  sqlite.pragma('journal_mode = WAL');
  const insertEvent = sqlite.prepare(
    'insert into audit_events (seq, event_id, execution_id, type, actor, at, data, prev_hash, hash, recorded_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insertRun = sqlite.prepare(
    'insert into executions (id, runbook_name, runbook_version, operator, reason, status, plan_digest, params, targets, approvals, created_at, updated_at, finished_at) values (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insertTarget = sqlite.prepare(
    'insert into execution_targets (instance_id, created_at, execution_id) values (?, ?, ?)',
  );
  const insertApprover = sqlite.prepare(
    'insert into execution_approvers (approver, created_at, execution_id) values (?, ?, ?)',
  );
  const insertCheckpoint = sqlite.prepare(
    'insert into audit_checkpoints (seq, key_id, hash, at, signature, recorded_at) values (?, ?, ?, ?, ?, ?)',
  );
  const rnd = random(42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const start = performance.now();
  let seq = 0;
  let prev = GENESIS_HASH;
  let runs = 0;
  let checkpoints = 0;
  let lastSigned = 0;
  const t0 = Date.parse('2025-12-01T00:00:00.000Z');
  const span = 365 * 86_400_000;
  sqlite.transaction(() => {
    while (seq < options.events) {
      const id = `mx-b${String(runs).padStart(8, '0')}`;
      const operator = pick(PEOPLE);
      let approver = pick(PEOPLE);
      if (approver === operator) approver = PEOPLE[(PEOPLE.indexOf(operator) + 1) % PEOPLE.length]!;
      const targets = [...new Set([pick(INSTANCES), ...(rnd() < 0.5 ? [pick(INSTANCES)] : [])])];
      const at = new Date(t0 + Math.floor((runs / (options.events / 10)) * span)).toISOString();
      const outcome = rnd();
      const end = outcome < 0.8 ? 'completed' : outcome < 0.93 ? 'failed' : 'rejected';
      const events: NewAuditEvent[] = runEvents({
        id,
        runbook: pick(RUNBOOKS),
        operator,
        approvers: [approver],
        at,
        targets,
        end,
      });
      let last = at;
      let ended = false;
      for (const e of events) {
        seq++;
        const hash = chainHash(prev, e);
        insertEvent.run(seq, e.eventId, e.executionId, e.type, e.actor, e.at, canonicalJson(e.data), prev, hash, e.at);
        prev = hash;
        last = e.at;
        // The real store signs in the transaction that writes an execution's end (or anything
        // after it), and renews at least every CHECKPOINT_EVERY_RECORDS records.
        ended ||= endStatusOf(e.type) !== undefined;
        if (options.signer && (ended || seq - lastSigned >= CHECKPOINT_EVERY_RECORDS)) {
          const cp = options.signer.sign({ seq, hash }, new Date(e.at));
          insertCheckpoint.run(cp.seq, cp.keyId, cp.hash, cp.at, cp.signature, cp.at);
          lastSigned = seq;
          checkpoints++;
        }
      }
      const first = events[0]!;
      const data = first.data as { runbook: { name: string }; planDigest: string; params: unknown; reason: string };
      const approved = [approver];
      insertRun.run(
        id,
        data.runbook.name,
        operator,
        data.reason,
        end,
        data.planDigest,
        canonicalJson(data.params),
        canonicalJson(targets),
        canonicalJson(approved),
        at,
        last,
        last,
      );
      for (const t of targets) insertTarget.run(t, at, id);
      for (const a of approved) insertApprover.run(a, at, id);
      runs++;
    }
  })();
  sqlite.close();
  return { runs, events: seq, checkpoints, ms: performance.now() - start };
}
