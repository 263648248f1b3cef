/**
 * The checkpoints `audit verify` has admitted, by seq: what each record at a checkpoint's seq must
 * be (its hash), and where the checkpoint was found. A large log has one at every execution's end
 * (122,000 over a million records), so the database's are held as two flat columns — their seqs in
 * order and their 64-character hashes end to end — read from SQLite as two strings and handed to
 * the walk's threads as they are, instead of one object per checkpoint built, copied to each
 * thread and put in a map there. Any other (the copy beside the key, one signed while verify ran,
 * one not in that shape) is kept one by one beside them.
 */
import type { CheckpointSource, SignedAt } from './verify-rows.ts';

const HASH_LENGTH = 64;

/** One admitted checkpoint, as a record at its seq is compared with it. */
export interface SignedEntry {
  readonly hash: string;
  readonly source: CheckpointSource;
  /** Known for those kept one by one (a checkpoint signed during verify is told from one already admitted by it). */
  readonly keyId?: string;
}

/** The part of the admitted checkpoints one range's thread needs, in a form copied cheaply. */
export interface CheckpointSlice {
  /** Database checkpoints' seqs, ascending. */
  readonly seqs: Float64Array;
  /** Their hashes, HASH_LENGTH characters each, in the same order. */
  readonly hashes: string;
  /** The others in the range: [seq, hash, source]. */
  readonly others: readonly (readonly [number, string, CheckpointSource])[];
}

export class SignedCheckpoints implements SignedAt {
  private seqs: Float64Array = new Float64Array(0);
  private hashes = '';
  private readonly others = new Map<number, SignedEntry[]>();

  /** Admitted checkpoints of one range, as a thread receives them. */
  static of(slice: CheckpointSlice): SignedCheckpoints {
    const s = new SignedCheckpoints();
    s.seqs = slice.seqs;
    s.hashes = slice.hashes;
    for (const [seq, hash, source] of slice.others) s.add(seq, { hash, source });
    return s;
  }

  /**
   * Admits database checkpoints in bulk: `seqs` ascending, `hashes` each HASH_LENGTH characters in
   * the same order. Only before any other is added, and once.
   */
  addDatabaseColumns(seqs: Float64Array, hashes: string): void {
    if (this.seqs.length > 0 || this.others.size > 0) throw new Error('database columns are admitted first, once');
    if (hashes.length !== seqs.length * HASH_LENGTH) throw new Error('one hash of 64 characters per seq');
    for (let i = 1; i < seqs.length; i++) if (!(seqs[i - 1]! <= seqs[i]!)) throw new Error('seqs must ascend');
    this.seqs = seqs;
    this.hashes = hashes;
  }

  add(seq: number, entry: SignedEntry): void {
    const list = this.others.get(seq);
    if (list) list.push(entry);
    else this.others.set(seq, [entry]);
  }

  /** How many are admitted (what verify reports as checked). */
  get size(): number {
    let n = this.seqs.length;
    for (const list of this.others.values()) n += list.length;
    return n;
  }

  has(seq: number): boolean {
    return this.first(seq) >= 0 || (this.others.size > 0 && this.others.has(seq));
  }

  get(seq: number): readonly SignedEntry[] | undefined {
    const i = this.first(seq);
    const other = this.others.size > 0 ? this.others.get(seq) : undefined;
    if (i < 0) return other;
    const found: SignedEntry[] = [];
    for (let k = i; k < this.seqs.length && this.seqs[k] === seq; k++) {
      found.push({ hash: this.hashes.slice(k * HASH_LENGTH, (k + 1) * HASH_LENGTH), source: 'database' });
    }
    return other ? [...found, ...other] : found;
  }

  /** Those with seq above `after` (null: all from the first) up to and including `upTo`. */
  slice(after: number | null, upTo: number): CheckpointSlice {
    const from = after === null ? 0 : this.lowerBound(after + 1);
    const to = this.lowerBound(upTo + 1);
    const others: [number, string, CheckpointSource][] = [];
    for (const [seq, list] of this.others) {
      if ((after === null || seq > after) && seq <= upTo) for (const e of list) others.push([seq, e.hash, e.source]);
    }
    return {
      seqs: this.seqs.slice(from, to),
      hashes: this.hashes.slice(from * HASH_LENGTH, to * HASH_LENGTH),
      others,
    };
  }

  /** The index of the first database checkpoint at `seq`, or -1. */
  private first(seq: number): number {
    const i = this.lowerBound(seq);
    return i < this.seqs.length && this.seqs[i] === seq ? i : -1;
  }

  /** The index of the first seq not below `seq`. */
  private lowerBound(seq: number): number {
    let lo = 0;
    let hi = this.seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seqs[mid]! < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
