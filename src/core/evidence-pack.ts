/**
 * The evidence pack of one run: one file an auditor checks offline, with only the public key of the
 * audit log's signing key, to prove what happened in a run and that the record was not edited.
 *
 * Format (JSON, written in canonical form, `format: "mechanic-evidence-pack"`, `version: 1`):
 * - `executionId`, `createdAt`, `createdBy`: which run, when and by whom the pack was made (not proven);
 * - `events`: every audit record of the run, in full (seq, the six hashed fields, prevHash, hash,
 *   recordedAt), from its request up to the checkpoint;
 * - `runbook`: the version it ran — the YAML as published, the parsed definition its digest is over,
 *   and that digest, which must be the one the plan pinned;
 * - `votes`: the run's votes, as read from its `approval.*` events (a convenience: checked against them);
 * - `proof`: the chain proof, `method: "segment"`: every other record of the log between the run's first
 *   event (`from`) and the checkpoint (`to`), in full;
 * - `checkpoint`: the signed checkpoint (seq, hash, at, keyId, Ed25519 signature) covering `to`;
 * - `key`: the id and PEM of the public key that signed it.
 *
 * Why the whole segment, other runs' records included: a record's hash is sha256 over the previous hash
 * and the record's canonical JSON, so a link can only be recomputed from the record's full content —
 * sha256 cannot be resumed from a digest of the content. A proof that gave only the hashes of the records
 * in between would let a forger change a run's event and claim any next hash for the record after it.
 * With the full segment, the verifier recomputes every hash from `from` to `to`; the last equals the
 * signed checkpoint's hash, so (sha256 being collision resistant) every record in the segment, the run's
 * included, is exactly what the log held when the checkpoint was signed, at the seq it claims (seqs count
 * back from the checkpoint's). A run event left out leaves a gap in the seqs; one moved among the others
 * is caught by its execution id; one before `from` is caught because a run begins with its request. The
 * price is that a pack shows the other records written meanwhile, so making one needs `exportAudit`, the
 * right to export the whole log.
 *
 * Pure (node:crypto and zod only): the store collects the records, the CLI reads and writes files.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import type { AuditRecord } from './audit-chain.ts';
import { CheckpointSchema, keyIdOf, type Checkpoint } from './audit-checkpoint.ts';
import { readAuditEvent, END_EVENT_STATUS, type AuditEvent } from './audit-events.ts';
import { canonicalJson, digestOf } from './canonical.ts';
import { verifyRunProof } from './run-proof.ts';

export const EVIDENCE_PACK_FORMAT = 'mechanic-evidence-pack';
export const EVIDENCE_PACK_VERSION = 1;

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

export const PackRecordSchema = z.strictObject({
  seq: z.number().int().positive(),
  eventId: z.string(),
  executionId: z.string().nullable(),
  type: z.string(),
  actor: z.string(),
  at: z.string(),
  data: z.record(z.string(), z.unknown()),
  prevHash: Hex64,
  hash: Hex64,
  /** The store's clock at insert: informational, not covered by the hash. */
  recordedAt: z.string(),
});
export type PackRecord = z.infer<typeof PackRecordSchema>;

export const PackVoteSchema = z.strictObject({
  /** The event that recorded it. */
  seq: z.number().int().positive(),
  decision: z.enum(['approve', 'reject']),
  voter: z.string(),
  at: z.string(),
  planDigest: z.string(),
  comment: z.string().optional(),
  groups: z.array(z.string()).optional(),
});
export type PackVote = z.infer<typeof PackVoteSchema>;

export const EvidencePackSchema = z.strictObject({
  format: z.literal(EVIDENCE_PACK_FORMAT),
  version: z.literal(EVIDENCE_PACK_VERSION),
  executionId: z.string().min(1),
  createdAt: z.string(),
  createdBy: z.string(),
  runbook: z.strictObject({
    name: z.string(),
    version: z.number().int(),
    digest: Hex64,
    yaml: z.string(),
    definition: z.record(z.string(), z.unknown()),
  }),
  events: z.array(PackRecordSchema).min(1),
  votes: z.array(PackVoteSchema),
  proof: z.strictObject({
    method: z.literal('segment'),
    from: z.number().int().positive(),
    to: z.number().int().positive(),
    records: z.array(PackRecordSchema),
  }),
  checkpoint: CheckpointSchema,
  key: z.strictObject({ keyId: z.string().min(1), algorithm: z.literal('Ed25519'), publicKey: z.string() }),
});
export type EvidencePack = z.infer<typeof EvidencePackSchema>;

export interface PackInput {
  readonly executionId: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly runbook: EvidencePack['runbook'];
  /** Every record from the run's first event to the checkpoint's seq, in seq order. */
  readonly segment: readonly PackRecord[];
  readonly checkpoint: Checkpoint;
  readonly publicKey: KeyObject;
}

/** The votes a run's events record, in order. */
export function votesOf(events: readonly PackRecord[]): PackVote[] {
  const votes: PackVote[] = [];
  for (const e of events) {
    if (e.type !== 'approval.granted' && e.type !== 'approval.rejected') continue;
    const d = e.data as { planDigest?: unknown; comment?: unknown; groups?: unknown };
    votes.push({
      seq: e.seq,
      decision: e.type === 'approval.granted' ? 'approve' : 'reject',
      voter: e.actor,
      at: e.at,
      planDigest: String(d.planDigest),
      ...(typeof d.comment === 'string' ? { comment: d.comment } : {}),
      ...(Array.isArray(d.groups) ? { groups: d.groups.map(String) } : {}),
    });
  }
  return votes;
}

/** Assembles a pack from what the store read; the segment is split into the run's events and the rest. */
export function buildEvidencePack(input: PackInput): EvidencePack {
  const events = input.segment.filter((r) => r.executionId === input.executionId);
  const others = input.segment.filter((r) => r.executionId !== input.executionId);
  return {
    format: EVIDENCE_PACK_FORMAT,
    version: EVIDENCE_PACK_VERSION,
    executionId: input.executionId,
    createdAt: input.createdAt,
    createdBy: input.createdBy,
    runbook: input.runbook,
    events,
    votes: votesOf(events),
    proof: {
      method: 'segment',
      from: input.segment[0]?.seq ?? input.checkpoint.seq,
      to: input.checkpoint.seq,
      records: others,
    },
    checkpoint: input.checkpoint,
    key: {
      keyId: keyIdOf(input.publicKey),
      algorithm: 'Ed25519',
      publicKey: input.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    },
  };
}

/** The file's text: canonical JSON (keys sorted, no whitespace) and a newline. */
export function serializeEvidencePack(pack: EvidencePack): string {
  return `${canonicalJson(pack)}\n`;
}

export interface PackSummary {
  readonly executionId: string;
  readonly runbook: { readonly name: string; readonly version: number; readonly digest: string };
  readonly planDigest: string;
  /** The run's status as its events tell it. */
  readonly status: string;
  readonly events: number;
  readonly votes: { readonly approvals: number; readonly rejections: number; readonly forOtherPlans: number };
  /** The segment of the log proven: records from..to, of which `events` are the run's. */
  readonly proof: { readonly from: number; readonly to: number; readonly records: number };
  readonly checkpoint: { readonly seq: number; readonly at: string; readonly keyId: string };
  /** Whose key verified the signature: the one the auditor gave, or the one inside the pack. */
  readonly keySource: 'given' | 'pack';
}

export type PackVerdict =
  { readonly ok: true; readonly summary: PackSummary } | { readonly ok: false; readonly problem: string };

export interface PackVerifyOptions {
  /** The key the auditor trusts (from `mechanic audit key`); without it the pack's own key is used. */
  readonly publicKey?: KeyObject;
  /**
   * Parses runbook YAML the way the registry does and returns the definition its digest is taken
   * over; throws with a sentence when the text is not a runbook. Injected so this module stays pure.
   */
  readonly parseRunbookYaml: (yaml: string) => unknown;
}

class Broken extends Error {}
const broken = (problem: string): never => {
  throw new Broken(problem);
};

/** What a record is, for a sentence: "event #12 (approval.granted)" or "record #13 of the proof". */
function describe(r: PackRecord, runId: string): string {
  return r.executionId === runId ? `event #${r.seq} (${r.type})` : `record #${r.seq} of the proof`;
}

/** The first zod issue as "field.path: message". */
function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'it does not fit the format';
  const where = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
  return `${where.replace(/^\./, '') || 'the pack'}: ${issue.message}`;
}

/**
 * What is missing or doubled in a pack's segment, by seq: a pack-specific reading of the shape, so the
 * sentence names the records left out. The links and the signature are checked by verifyRunProof.
 */
function gapProblem(records: readonly PackRecord[]): string | undefined {
  for (let i = 1; i < records.length; i++) {
    const prev = records[i - 1]!;
    const r = records[i]!;
    if (r.seq === prev.seq) return `record #${r.seq} appears twice in the pack`;
    if (r.seq !== prev.seq + 1) {
      const missing =
        prev.seq + 1 === r.seq - 1 ? `record #${prev.seq + 1} is` : `records #${prev.seq + 1}–#${r.seq - 1} are`;
      return `${missing} missing from the pack: the chain cannot be followed from #${prev.seq} to #${r.seq}`;
    }
  }
  return undefined;
}

function check(pack: EvidencePack, options: PackVerifyOptions): PackSummary {
  const runId = pack.executionId;
  // The key: the auditor's, or the pack's own, whose id must be what it claims.
  let packKey: KeyObject;
  try {
    packKey = createPublicKey(pack.key.publicKey);
  } catch {
    return broken('key.publicKey is not a PEM public key');
  }
  if (packKey.asymmetricKeyType !== 'ed25519') broken('key.publicKey is not an Ed25519 key');
  if (keyIdOf(packKey) !== pack.key.keyId) broken(`key.keyId ${pack.key.keyId} is not the id of key.publicKey`);
  const key = options.publicKey ?? packKey;
  const keyId = keyIdOf(key);
  if (pack.checkpoint.keyId !== keyId) {
    broken(
      options.publicKey
        ? `the checkpoint is signed by key ${pack.checkpoint.keyId}, not by the key you gave (${keyId})`
        : `the checkpoint names key ${pack.checkpoint.keyId}, but the pack's key is ${keyId}`,
    );
  }

  // Which records are the run's: every event names it, no other record does.
  pack.events.forEach((e, i) => {
    if (e.executionId !== runId) {
      broken(`events[${i}] (record #${e.seq}) belongs to ${e.executionId ?? 'no execution'}, not to ${runId}`);
    }
    if (i > 0 && e.seq <= pack.events[i - 1]!.seq) broken(`events[${i}] (record #${e.seq}) is out of order`);
  });
  for (const r of pack.proof.records) {
    if (r.executionId === runId) broken(`record #${r.seq} is an event of ${runId}, but it is missing from the events`);
  }
  const segment = [...pack.events, ...pack.proof.records].sort((a, b) => a.seq - b.seq);
  const first = pack.events[0]!;
  if (pack.proof.from !== first.seq) {
    broken(`proof.from is #${pack.proof.from}, but the run's first event is #${first.seq}`);
  }
  if (segment[0]!.seq !== pack.proof.from) broken(`the proof holds record #${segment[0]!.seq}, before proof.from`);
  if (pack.proof.to !== pack.checkpoint.seq) {
    broken(`proof.to is #${pack.proof.to}, but the checkpoint covers #${pack.checkpoint.seq}`);
  }
  const gap = gapProblem(segment);
  if (gap) broken(gap);
  // The links and the signature: the one proof check, shared with the run page (src/core/run-proof.ts).
  const proof = verifyRunProof(
    { executionId: runId, records: segment as unknown as AuditRecord[], checkpoint: pack.checkpoint, after: [] },
    new Map([[keyId, key]]),
  );
  if (!proof.ok) {
    const r = segment.find((x) => x.seq === proof.seq);
    broken(
      proof.check === 'chain' && r
        ? `${describe(r, runId)}: ${proof.reason.replace(/^record #\d+: /, '')}`
        : proof.reason,
    );
  }

  // The events fit the vocabulary, and the run begins with its request.
  const events = pack.events.map((e) => {
    const read = readAuditEvent({ ...e, type: e.type as AuditEvent['type'] });
    return read.ok ? read.event : broken(`event #${e.seq} does not fit the audit vocabulary: ${read.problem}`);
  });
  const request = events[0]!;
  if (request.type !== 'execution.requested') {
    broken(`the run's first event #${first.seq} is ${request.type}, not its request: events before it are missing`);
  }
  const requested = request as Extract<AuditEvent, { type: 'execution.requested' }>;
  events.slice(1).forEach((e, i) => {
    if (e.type === 'execution.requested') broken(`event #${pack.events[i + 1]!.seq} is a second request of the run`);
  });

  // The plan the run was approved on, and the runbook version it pinned.
  // The vocabulary has checked that the plan holds a runbook object (its digest may still be missing).
  const plan = requested.data.plan as unknown as { executionId?: unknown; runbook: { digest?: unknown } };
  if (digestOf(plan) !== requested.data.planDigest) {
    broken(`the plan in event #${first.seq} does not match its planDigest ${requested.data.planDigest.slice(0, 12)}`);
  }
  if (plan.executionId !== runId) broken(`the plan in event #${first.seq} is for another execution`);
  const pinned = requested.data.runbook;
  const rb = pack.runbook;
  if (digestOf(rb.definition) !== rb.digest) {
    broken(`runbook.definition does not match runbook.digest ${rb.digest.slice(0, 12)}`);
  }
  if (rb.digest !== pinned.digest || plan.runbook.digest !== pinned.digest) {
    broken(
      `the runbook in the pack (digest ${rb.digest.slice(0, 12)}) is not the version the plan pinned (digest ${pinned.digest.slice(0, 12)})`,
    );
  }
  if (rb.name !== pinned.name || rb.version !== pinned.version) {
    broken(`the runbook in the pack is ${rb.name}@${rb.version}, but the run ran ${pinned.name}@${pinned.version}`);
  }
  let parsed: unknown;
  try {
    parsed = options.parseRunbookYaml(rb.yaml);
  } catch (e) {
    return broken(`runbook.yaml is not a valid runbook: ${(e as Error).message}`);
  }
  if (canonicalJson(parsed) !== canonicalJson(rb.definition)) {
    broken(
      `runbook.yaml does not read as the runbook version with digest ${rb.digest.slice(0, 12)}: the YAML was changed`,
    );
  }

  // The votes listed are exactly the votes the events record.
  const votes = votesOf(pack.events);
  if (pack.votes.length !== votes.length) {
    broken(`votes lists ${pack.votes.length} votes, but the run's events record ${votes.length}`);
  }
  pack.votes.forEach((v, i) => {
    if (canonicalJson(v) !== canonicalJson(votes[i])) {
      broken(`votes[${i}] does not match the vote recorded in event #${votes[i]!.seq}`);
    }
  });

  const end = events.find((e) => e.type in END_EVENT_STATUS);
  const running = events.some((e) => e.type === 'execution.running');
  const status = end
    ? END_EVENT_STATUS[end.type as keyof typeof END_EVENT_STATUS]
    : running
      ? 'running'
      : 'awaiting_approval';
  const forPlan = votes.filter((v) => v.planDigest === requested.data.planDigest);
  return {
    executionId: runId,
    runbook: { name: rb.name, version: rb.version, digest: rb.digest },
    planDigest: requested.data.planDigest,
    status,
    events: pack.events.length,
    votes: {
      approvals: forPlan.filter((v) => v.decision === 'approve').length,
      rejections: forPlan.filter((v) => v.decision === 'reject').length,
      forOtherPlans: votes.length - forPlan.length,
    },
    proof: { from: pack.proof.from, to: pack.proof.to, records: segment.length },
    checkpoint: { seq: pack.checkpoint.seq, at: pack.checkpoint.at, keyId: pack.checkpoint.keyId },
    keySource: options.publicKey ? 'given' : 'pack',
  };
}

/**
 * Verifies a pack offline: its format, the key, the checkpoint's signature, every hash of the segment
 * from the run's request to the checkpoint, that nothing of the run is left out, that the runbook
 * version is the one the plan pinned (digest of its definition, and its YAML reading as that
 * definition), and that the listed votes are the recorded ones. The first problem found is one
 * sentence naming the record or field.
 */
export function verifyEvidencePack(input: unknown, options: PackVerifyOptions): PackVerdict {
  const parsed = EvidencePackSchema.safeParse(input);
  if (!parsed.success) {
    const raw = input as { format?: unknown; version?: unknown } | null;
    if (raw?.format === EVIDENCE_PACK_FORMAT && raw.version !== EVIDENCE_PACK_VERSION) {
      return {
        ok: false,
        problem: `the pack is format version ${String(raw.version)}, which this mechanic does not read (it reads version ${EVIDENCE_PACK_VERSION})`,
      };
    }
    return { ok: false, problem: `the pack is malformed at ${firstIssue(parsed.error)}` };
  }
  try {
    return { ok: true, summary: check(parsed.data, options) };
  } catch (e) {
    if (e instanceof Broken) return { ok: false, problem: e.message };
    throw e;
  }
}
