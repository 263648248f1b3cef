/**
 * A 3-step run on 5 instances through mechanic (launch → approval → three steps → completed, on
 * the embedded stack) against the same three commands from a shell script using the AWS CLI's
 * `send-command` and `wait command-executed` (aws-cli-steps.sh) against the same devfleet.
 *
 * The AWS CLI is not part of the project: on first use it is installed, at a pinned version, into
 * a virtualenv in the user's cache (`$XDG_CACHE_HOME/mechanic`, else `~/.cache/mechanic`) with
 * `python3 -m venv` and pip. When that cannot be done (no python3, no network), the bench says so
 * in one line and is skipped.
 *
 * Part of `npm run bench` (run.ts); alone: `node --import tsx test/bench/aws-cli.ts`.
 */
import { execFile } from 'node:child_process';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config.ts';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import { DEMO_HOST_NAMES, DEMO_INSTANCE_IDS, DEMO_ROLE_ARN } from '../../src/devfleet/config.ts';
import { defaultCacheDir } from '../../src/embedded/provision.ts';
import { startStack, throwawayStackEnv } from '../../src/embedded/stack.ts';
import { approvedRun, prepareFleetHome, runbooksFolder } from './fleet-home.ts';

const run = promisify(execFile);

/** The AWS CLI version the bench installs (v1, from PyPI; v2 is not on PyPI). */
export const AWS_CLI_VERSION = '1.46.2';
const SCRIPT = fileURLToPath(new URL('./aws-cli-steps.sh', import.meta.url));

/** The `aws` executable, installed on first use; or why it cannot be had. */
export async function ensureAwsCli(
  cacheDir = defaultCacheDir(),
  progress: (line: string) => void = () => {},
): Promise<{ aws: string } | { skip: string }> {
  const venv = path.join(cacheDir, `awscli-${AWS_CLI_VERSION}`);
  const aws = path.join(venv, 'bin', 'aws');
  // Written last: a folder without it is an install that was interrupted, and is made again.
  const complete = path.join(venv, '.mechanic-complete');
  try {
    await access(complete);
    return { aws };
  } catch {
    // Not installed yet.
  }
  try {
    progress(`installing the AWS CLI ${AWS_CLI_VERSION} into ${venv} (python3 -m venv + pip, once)`);
    await rm(venv, { recursive: true, force: true });
    // A virtualenv records its own path in its scripts, so it is made where it will stay.
    await run('python3', ['-m', 'venv', venv], { timeout: 120_000 });
    await run(
      path.join(venv, 'bin', 'pip'),
      ['install', '--disable-pip-version-check', '--quiet', `awscli==${AWS_CLI_VERSION}`],
      { timeout: 600_000 },
    );
    await run(aws, ['--version'], { timeout: 60_000 });
    await writeFile(complete, `${AWS_CLI_VERSION}\n`);
    return { aws };
  } catch (e) {
    await rm(venv, { recursive: true, force: true });
    const why = ((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n').pop() ?? '';
    return { skip: `the AWS CLI ${AWS_CLI_VERSION} could not be installed with python3 -m venv + pip (${why})` };
  }
}

const RUNBOOK = `name: cli-compare
version: 1
description: Bench runbook, the three steps the AWS CLI script runs, on five staging hosts.
owners: [sre]
risk: low
environment: staging
tags: [bench]
roleArn: ${DEMO_ROLE_ARN}
targets:
  tags:
    Env: staging
approval:
  required: 1
  expiresAfterMinutes: 30
steps:
${[1, 2, 3].map((n) => `  - name: step-${n}\n    timeoutSeconds: 60\n    script: |\n      echo step ${n}\n`).join('')}`;

/** The two extra staging hosts (ordinary instances: bash in a sandbox, like the demo three). */
const EXTRA = [
  {
    id: 'i-0d3f1ee7000000004',
    name: 'ip-10-0-1-13.ec2.internal',
    tags: { Name: 'web-3', Role: 'web', Env: 'staging' },
  },
  {
    id: 'i-0d3f1ee7000000005',
    name: 'ip-10-0-1-14.ec2.internal',
    tags: { Name: 'web-4', Role: 'web', Env: 'staging' },
  },
];

export interface CliRow {
  n: number;
  mechanicMedian: number;
  cliMedian: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

/** Runs both sides `runs` times, interleaved; undefined with a reason when the CLI cannot be had. */
export async function benchAwsCli(dir: string, runs = 3, progress?: (line: string) => void): Promise<CliRow | string> {
  const cli = await ensureAwsCli(undefined, progress);
  if ('skip' in cli) return cli.skip;
  const home = path.join(dir, 'cli-stack');
  const root = await prepareFleetHome(home, {
    instances: [
      ...(['web-1', 'web-2', 'db-1'] as const).map((n) => ({
        id: DEMO_INSTANCE_IDS[n],
        name: DEMO_HOST_NAMES[n],
        tags: { Name: n, Role: n.startsWith('web') ? 'web' : 'db', Env: 'staging' },
      })),
      ...EXTRA,
    ],
  });
  const env = await throwawayStackEnv(home, { minMs: 0, maxMs: 0 });
  // The stack's own polling defaults, as in the step-overhead bench.
  delete env['MECHANIC_POLL_MIN_MS'];
  delete env['MECHANIC_POLL_MAX_MS'];
  env['MECHANIC_RUNBOOKS_DIR'] = await runbooksFolder(path.join(dir, 'cli-runbooks'), { 'cli-compare.yaml': RUNBOOK });
  const config = loadConfig(env);
  const stack = await startStack(config, { progress: () => {} }, env);
  const ids = [...Object.values(DEMO_INSTANCE_IDS), ...EXTRA.map((e) => e.id)];
  const fleetLog = path.join(config.home, 'devfleet');
  try {
    const viaMechanic = async () => {
      const r = await approvedRun(config, 'cli-compare', {}, 50);
      return r.completedAt - r.launchedAt;
    };
    const viaCli = async (i: number) => {
      const tag = `cli bench ${i}`;
      const t = performance.now();
      await run('bash', [SCRIPT], {
        timeout: 600_000,
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          HOME: dir,
          AWS_CLI: cli.aws,
          ENDPOINT: stack.info.devfleetEndpoint,
          ROLE_ARN: DEMO_ROLE_ARN,
          INSTANCE_IDS: ids.join(' '),
          TAG: tag,
          AWS_ACCESS_KEY_ID: root.accessKeyId,
          AWS_SECRET_ACCESS_KEY: root.secretAccessKey,
          AWS_DEFAULT_REGION: 'us-east-1',
          AWS_CONFIG_FILE: path.join(dir, 'no-aws-config'),
          AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-aws-credentials'),
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_PAGER: '',
        },
      });
      const ms = performance.now() - t;
      const ran = (await readCommandLog(fleetLog)).filter((e) => e.comment.startsWith(`${tag} step `));
      if (ran.length !== 15 || ran.some((e) => e.status !== 'Success'))
        throw new Error(`the AWS CLI script ran ${ran.length} invocations, not 15 successful ones`);
      return ms;
    };
    // One warm-up each: the first workflow task of a fresh worker, the CLI's first Python start.
    await viaMechanic();
    await viaCli(0);
    const m: number[] = [];
    const c: number[] = [];
    for (let i = 1; i <= runs; i++) {
      m.push(await viaMechanic());
      c.push(await viaCli(i));
    }
    return { n: runs, mechanicMedian: median(m), cliMedian: median(c) };
  } finally {
    await stack.stop();
  }
}

export function formatCli(row: CliRow | string): string {
  if (typeof row === 'string') return `3-step run on 5 instances vs the AWS CLI: skipped — ${row}`;
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  return [
    '| 3 steps on 5 instances | n | median | baseline | baseline median | ratio |',
    '|---|---|---|---|---|---|',
    `| mechanic: launch → approved → completed | ${row.n} | ${s(row.mechanicMedian)} | script with the AWS CLI ${AWS_CLI_VERSION} (send-command, wait command-executed) | ${s(row.cliMedian)} | ${(row.mechanicMedian / row.cliMedian).toFixed(2)}× |`,
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = await mkdtemp(path.join(tmpdir(), 'mechanic-cli-bench-'));
  try {
    process.stdout.write(`${formatCli(await benchAwsCli(dir, 3, (l) => process.stderr.write(`${l}\n`)))}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
