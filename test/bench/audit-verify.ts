/**
 * `npm run bench:verify`: `mechanic audit verify` speed over a million audit events. Goal: over
 * 200,000 events/s.
 *
 * The log is generated straight into SQLite (audit-fill.ts: real hash chain, executions index and
 * side tables, and the signed checkpoints the real store writes — one at every execution's end),
 * then verified whole through the real store with its signing key, `RUNS` times: by default (the
 * newest checkpoint's signature; the walk in ranges on worker threads) and with allSignatures
 * (`--all-signatures`: every checkpoint's signature too); median and p95 wall time and events/s
 * are printed. The baseline, measured in the same run over the same rows: one pass reading every
 * record's stored bytes and hashing them with sha256 on one thread (what verifying could at best
 * cost: the read plus one hash per record), and one pass checking every checkpoint's Ed25519
 * signature (what --all-signatures adds). Each line also gives the process's CPU time (all
 * threads), which says what the work costs when the machine is shared.
 *
 * Options (env): BENCH_EVENTS (default 1000000), BENCH_RUNS (default 5).
 */
import { generateKeyPairSync, hash, verify as verifySignature, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import SQLite from 'better-sqlite3';
import { checkpointMessage, checkpointSigner } from '../../src/core/audit-checkpoint.ts';
import { openAuditStore } from '../../src/store/audit-log.ts';
import { signingWith } from '../../src/store/checkpoints.ts';
import { verifyThreads } from '../../src/store/verify-parallel.ts';
import { fillAuditLog } from './audit-fill.ts';

const EVENTS = Number(process.env['BENCH_EVENTS'] ?? 1_000_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 5);
const GOAL = 200_000;
if (!Number.isInteger(EVENTS) || EVENTS < 1000) throw new Error('BENCH_EVENTS must be an integer of at least 1000');
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error('BENCH_RUNS must be a positive integer');

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** Every record's stored columns, read in pages and hashed with sha256 (crypto.hash, as verify does): verify's floor. */
function bareHashPass(file: string): number {
  const sqlite = new SQLite(file, { readonly: true });
  try {
    const page = sqlite
      .prepare(
        'select seq, event_id, execution_id, type, actor, at, data, prev_hash, hash from audit_events where seq > ? order by seq limit 10000',
      )
      .raw(true);
    let last = 0;
    let n = 0;
    for (;;) {
      const rows = page.all(last) as unknown[][];
      if (rows.length === 0) break;
      for (const r of rows) {
        hash(
          'sha256',
          `${r[7] as string}\n${r[1] as string}${r[2] as string}${r[3] as string}${r[4] as string}${r[5] as string}${r[6] as string}`,
          'hex',
        );
        n++;
      }
      last = Number(rows.at(-1)![0]);
    }
    return n;
  } finally {
    sqlite.close();
  }
}

/** Every checkpoint's signature checked once, nothing else. */
function bareSignaturePass(file: string, publicKey: KeyObject): number {
  const sqlite = new SQLite(file, { readonly: true });
  try {
    const rows = sqlite.prepare('select seq, hash, at, key_id, signature from audit_checkpoints').all() as {
      seq: number;
      hash: string;
      at: string;
      key_id: string;
      signature: string;
    }[];
    for (const r of rows) {
      const ok = verifySignature(
        null,
        checkpointMessage({ seq: r.seq, hash: r.hash, at: r.at, keyId: r.key_id }),
        publicKey,
        Buffer.from(r.signature, 'base64'),
      );
      if (!ok) throw new Error(`checkpoint #${r.seq} does not verify`);
    }
    return rows.length;
  } finally {
    sqlite.close();
  }
}

function timed<T>(f: () => T): { value: T; ms: number; cpuMs: number } {
  const t = performance.now();
  const c = process.cpuUsage();
  const value = f();
  const cpu = process.cpuUsage(c);
  return { value, ms: performance.now() - t, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Wall and CPU time (every thread of the process) of an async call. */
async function timedAsync<T>(f: () => Promise<T>): Promise<{ value: T; ms: number; cpuMs: number }> {
  const t = performance.now();
  const c = process.cpuUsage();
  const value = await f();
  const cpu = process.cpuUsage(c);
  return { value, ms: performance.now() - t, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function main(): Promise<void> {
  const home = await mkdtemp(path.join(tmpdir(), 'mechanic-bench-verify-'));
  const file = path.join(home, 'audit.db');
  try {
    const signer = checkpointSigner(generateKeyPairSync('ed25519').privateKey);
    const filled = await fillAuditLog(file, { events: EVENTS, signer });
    console.log(
      `filled ${filled.events.toLocaleString('en')} events (${filled.runs.toLocaleString('en')} runs, ${filled.checkpoints.toLocaleString('en')} signed checkpoints) in ${(filled.ms / 1000).toFixed(1)} s; Node ${process.version}, load average ${load()}`,
    );
    // The signing key in hand but no checkpoint file: the bench's log has none beside a key.
    const store = await openAuditStore({ kind: 'sqlite', file }, { signing: signingWith(signer, undefined) });
    // The same log verified without the key: chain, vocabulary and index, no checkpoint signatures.
    const unsigned = await openAuditStore({ kind: 'sqlite', file });
    const verifyMs: number[] = [];
    const allMs: number[] = [];
    const unsignedMs: number[] = [];
    const hashMs: number[] = [];
    const signMs: number[] = [];
    const cpu = {
      verify: [] as number[],
      all: [] as number[],
      unsigned: [] as number[],
      hash: [] as number[],
      sign: [] as number[],
    };
    const s = (ms: number) => (ms / 1000).toFixed(2);
    try {
      for (let i = 0; i < RUNS; i++) {
        const whole = await timedAsync(() => store.verify());
        const verdict = whole.value;
        verifyMs.push(whole.ms);
        cpu.verify.push(whole.cpuMs);
        if (!verdict.ok) throw new Error(`verify found the bench's log broken at #${verdict.seq}: ${verdict.reason}`);
        if (verdict.count !== filled.events)
          throw new Error(`verify counted ${verdict.count} events, not ${filled.events}`);
        const every = await timedAsync(() => store.verify({ allSignatures: true }));
        allMs.push(every.ms);
        cpu.all.push(every.cpuMs);
        if (!every.value.ok || every.value.count !== filled.events)
          throw new Error('verify --all-signatures did not pass the whole log');
        const plain = await timedAsync(() => unsigned.verify());
        unsignedMs.push(plain.ms);
        cpu.unsigned.push(plain.cpuMs);
        if (!plain.value.ok || plain.value.count !== filled.events)
          throw new Error('verify without the key did not pass the whole log');
        const hashed = timed(() => bareHashPass(file));
        if (hashed.value !== filled.events) throw new Error(`the bare pass read ${hashed.value} events`);
        hashMs.push(hashed.ms);
        cpu.hash.push(hashed.cpuMs);
        const signatures = timed(() => bareSignaturePass(file, signer.publicKey));
        signMs.push(signatures.ms);
        cpu.sign.push(signatures.cpuMs);
        console.log(
          `  run ${i + 1}: verify ${s(whole.ms)} s (CPU ${s(whole.cpuMs)} s), --all-signatures ${s(every.ms)} s (CPU ${s(every.cpuMs)} s), without the key ${s(plain.ms)} s (CPU ${s(plain.cpuMs)} s), bare sha256 pass ${s(hashed.ms)} s (CPU ${s(hashed.cpuMs)} s), signatures alone ${s(signatures.ms)} s (CPU ${s(signatures.cpuMs)} s) (load average ${load()})`,
        );
      }
    } finally {
      await store.close();
      await unsigned.close();
    }
    const line = (label: string, ms: number[]) => {
      const sorted = [...ms].sort((a, b) => a - b);
      const median = quantile(sorted, 0.5);
      console.log(
        `${label.padEnd(34)} median ${(median / 1000).toFixed(2).padStart(6)} s (${Math.round(
          (filled.events / median) * 1000,
        )
          .toLocaleString('en')
          .padStart(9)} events/s)   p95 ${(quantile(sorted, 0.95) / 1000).toFixed(2).padStart(6)} s`,
      );
      return median;
    };
    console.log(`${RUNS} runs over ${filled.events.toLocaleString('en')} events (load average now ${load()}):`);
    const v = line('audit verify (newest signature)', verifyMs);
    const a = line('audit verify --all-signatures', allMs);
    const u = line('audit verify without the key', unsignedMs);
    const h = line('baseline: read + sha256 per record', hashMs);
    const sg = line('baseline: checkpoint signatures', signMs);
    console.log(
      `verify / sha256 pass: ${(v / h).toFixed(2)}×; --all-signatures / (sha256 pass + signatures): ${(a / (h + sg)).toFixed(2)}×; without the key / sha256 pass: ${(u / h).toFixed(2)}×`,
    );
    const median = (xs: number[]) =>
      quantile(
        [...xs].sort((a, b) => a - b),
        0.5,
      );
    console.log(
      `CPU time, median: verify ${s(median(cpu.verify))} s, --all-signatures ${s(median(cpu.all))} s, without the key ${s(median(cpu.unsigned))} s, sha256 pass ${s(median(cpu.hash))} s, signatures ${s(median(cpu.sign))} s; verify / sha256 pass: ${(median(cpu.verify) / median(cpu.hash)).toFixed(2)}×, --all-signatures / (sha256 pass + signatures): ${(median(cpu.all) / (median(cpu.hash) + median(cpu.sign))).toFixed(2)}×, without the key / sha256 pass: ${(median(cpu.unsigned) / median(cpu.hash)).toFixed(2)}×`,
    );
    console.log(`worker threads for the walk: ${verifyThreads()} (one per core, at most 8)`);
    for (const [label, ms] of [
      ['verify', v],
      ['verify --all-signatures', a],
      ['verify without the key', u],
    ] as const) {
      const rate = (filled.events / ms) * 1000;
      console.log(
        `${label}: ${Math.round(rate).toLocaleString('en')} events/s, goal (over ${GOAL.toLocaleString('en')}) ${rate > GOAL ? 'met' : 'NOT met'}`,
      );
    }
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

await main();
