/**
 * What the Slack side of the API server must remember across restarts, in its own small SQLite
 * file (owner-only, under MECHANIC_HOME): the interactions already handled (so a replayed request
 * is refused), where each run's message is and what it last showed, which runs' messages still
 * have to catch up with the audit log, how far the log has been read, and the single-use
 * confirm-page tokens of high-risk approvals. The audit log stays the source of truth; this is a
 * cursor and a cache of Slack's side, and losing it costs at most a duplicate message.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

export interface StoredMessage {
  readonly executionId: string;
  readonly channel: string;
  readonly ts: string;
  readonly renderedSha256: string;
  readonly summaryPosted: boolean;
}

export interface DirtyRun {
  readonly executionId: string;
  readonly attempts: number;
  readonly notBeforeMs: number;
}

export interface ConfirmTicket {
  readonly token: string;
  readonly executionId: string;
  readonly planDigest: string;
  readonly userId: string;
  readonly slackUserId: string;
  readonly expiresAtMs: number;
}

export interface SlackState {
  /** Records an interaction; false when it was seen before (a replay). Forgets keys older than `keepMs`. */
  claimInteraction(key: string, nowMs: number, keepMs: number): boolean;
  /** The audit seq read so far; undefined before the first start. */
  cursor(): number | undefined;
  /** Marks runs whose message must catch up, and moves the cursor, in one transaction. */
  advance(executionIds: readonly string[], cursor: number): void;
  dirty(): DirtyRun[];
  /** The run's message is up to date with the log as of now. */
  clean(executionId: string): void;
  /** Try the run again no earlier than `notBeforeMs`; `failed` counts towards the back-off (a Retry-After does not). */
  defer(executionId: string, notBeforeMs: number, failed: boolean): void;
  message(executionId: string): StoredMessage | undefined;
  saveMessage(m: StoredMessage): void;
  /** Stores a confirm ticket; its token is the only way to it. */
  saveTicket(t: ConfirmTicket): void;
  /** Reads a ticket without using it (the page shows the plan first). */
  peekTicket(token: string, nowMs: number): ConfirmTicket | undefined;
  /** Uses a ticket: true once, false ever after (or when expired). */
  useTicket(token: string, nowMs: number): boolean;
  close(): void;
}

export function openSlackState(file: string): SlackState {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const db = new BetterSqlite3(file);
  if (file !== ':memory:') chmodSync(file, 0o600);
  db.pragma('journal_mode = WAL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS interactions (key TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS cursor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS dirty (execution_id TEXT PRIMARY KEY, attempts INTEGER NOT NULL, not_before_ms INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS messages (
      execution_id TEXT PRIMARY KEY, channel TEXT NOT NULL, ts TEXT NOT NULL,
      rendered_sha256 TEXT NOT NULL, summary_posted INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS tickets (
      token TEXT PRIMARY KEY, execution_id TEXT NOT NULL, plan_digest TEXT NOT NULL, user_id TEXT NOT NULL,
      slack_user_id TEXT NOT NULL, expires_ms INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
  `);
  const claim = db.transaction((key: string, now: number, keep: number): boolean => {
    db.prepare('DELETE FROM interactions WHERE seen_ms < ?').run(now - keep);
    return db.prepare('INSERT OR IGNORE INTO interactions (key, seen_ms) VALUES (?, ?)').run(key, now).changes === 1;
  });
  const advance = db.transaction((ids: readonly string[], seq: number) => {
    const mark = db.prepare(
      'INSERT INTO dirty (execution_id, attempts, not_before_ms) VALUES (?, 0, 0) ON CONFLICT (execution_id) DO UPDATE SET not_before_ms = 0',
    );
    for (const id of ids) mark.run(id);
    db.prepare('INSERT INTO cursor (id, seq) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq').run(seq);
  });
  return {
    claimInteraction: (key, now, keep) => claim(key, now, keep),
    cursor: () => (db.prepare('SELECT seq FROM cursor WHERE id = 1').get() as { seq: number } | undefined)?.seq,
    advance: (ids, seq) => advance(ids, seq),
    dirty: () =>
      (
        db.prepare('SELECT execution_id, attempts, not_before_ms FROM dirty ORDER BY execution_id').all() as {
          execution_id: string;
          attempts: number;
          not_before_ms: number;
        }[]
      ).map((r) => ({ executionId: r.execution_id, attempts: r.attempts, notBeforeMs: r.not_before_ms })),
    clean: (id) => void db.prepare('DELETE FROM dirty WHERE execution_id = ?').run(id),
    defer: (id, notBefore, failed) =>
      void db
        .prepare('UPDATE dirty SET attempts = attempts + ?, not_before_ms = ? WHERE execution_id = ?')
        .run(failed ? 1 : 0, notBefore, id),
    message: (id) => {
      const r = db.prepare('SELECT * FROM messages WHERE execution_id = ?').get(id) as
        | { execution_id: string; channel: string; ts: string; rendered_sha256: string; summary_posted: number }
        | undefined;
      return r
        ? {
            executionId: r.execution_id,
            channel: r.channel,
            ts: r.ts,
            renderedSha256: r.rendered_sha256,
            summaryPosted: r.summary_posted === 1,
          }
        : undefined;
    },
    saveMessage: (m) =>
      void db
        .prepare(
          `INSERT INTO messages (execution_id, channel, ts, rendered_sha256, summary_posted) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (execution_id) DO UPDATE SET channel = excluded.channel, ts = excluded.ts,
             rendered_sha256 = excluded.rendered_sha256, summary_posted = excluded.summary_posted`,
        )
        .run(m.executionId, m.channel, m.ts, m.renderedSha256, m.summaryPosted ? 1 : 0),
    saveTicket: (t) =>
      void db
        .prepare(
          'INSERT INTO tickets (token, execution_id, plan_digest, user_id, slack_user_id, expires_ms) VALUES (?, ?, ?, ?, ?, ?)',
        )
        .run(t.token, t.executionId, t.planDigest, t.userId, t.slackUserId, t.expiresAtMs),
    peekTicket: (token, now) => {
      const r = db.prepare('SELECT * FROM tickets WHERE token = ? AND used = 0 AND expires_ms > ?').get(token, now) as
        | {
            token: string;
            execution_id: string;
            plan_digest: string;
            user_id: string;
            slack_user_id: string;
            expires_ms: number;
          }
        | undefined;
      return r
        ? {
            token: r.token,
            executionId: r.execution_id,
            planDigest: r.plan_digest,
            userId: r.user_id,
            slackUserId: r.slack_user_id,
            expiresAtMs: r.expires_ms,
          }
        : undefined;
    },
    useTicket: (token, now) =>
      db.prepare('UPDATE tickets SET used = 1 WHERE token = ? AND used = 0 AND expires_ms > ?').run(token, now)
        .changes === 1,
    close: () => db.close(),
  };
}
