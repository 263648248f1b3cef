import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GetCommandInvocationCommand,
  SendCommandCommand,
  ListCommandInvocationsCommand,
  SSMClient,
  type CommandInvocation,
  type GetCommandInvocationCommandOutput,
} from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, STSClient, type AssumeRoleCommandInput } from '@aws-sdk/client-sts';
import {
  DEMO_ROLE_ARN,
  defaultFleetConfig,
  startDevfleet,
  type Devfleet,
  type DevfleetOptions,
  type FleetConfig,
} from '../../src/devfleet/index.ts';

/** Shared set-up for the devfleet tests: a fleet in a temp folder and real SDK clients against it. */

export const ROOT = { accessKeyId: 'AKIADEVFLEETTEST0001', secretAccessKey: 'devfleet-test-root-secret-0001' };
export const REGION = 'us-east-1';

export interface Harness {
  fleet: Devfleet;
  dataDir: string;
  config: FleetConfig;
  sts(credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }): STSClient;
  ssm(
    credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
    maxAttempts?: number,
  ): SSMClient;
  /** AssumeRole on the demo role (or input.RoleArn) and return an SSM client with the session. */
  assume(
    input?: Partial<AssumeRoleCommandInput>,
  ): Promise<{ ssm: SSMClient; credentials: { accessKeyId: string; secretAccessKey: string; sessionToken: string } }>;
  /** Stops devfleet and starts a new one on the same folder (and config unless given). */
  restart(overrides?: Partial<Omit<DevfleetOptions, 'dataDir'>>): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(opts: Partial<Omit<DevfleetOptions, 'dataDir'>> = {}): Promise<Harness> {
  const dataDir = await mkdtemp(join(tmpdir(), 'devfleet-test-'));
  const config = opts.config ?? defaultFleetConfig(ROOT);
  let currentOpts: DevfleetOptions = { timeScale: 1, ...opts, dataDir, config };
  let fleet = await startDevfleet(currentOpts);
  const clients: { destroy(): void }[] = [];
  const h: Harness = {
    get fleet() {
      return fleet;
    },
    dataDir,
    config,
    sts(credentials = ROOT) {
      const c = new STSClient({ region: REGION, endpoint: fleet.endpoint, credentials });
      clients.push(c);
      return c;
    },
    ssm(credentials, maxAttempts = 3) {
      const c = new SSMClient({ region: REGION, endpoint: fleet.endpoint, credentials, maxAttempts });
      clients.push(c);
      return c;
    },
    async assume(input = {}) {
      const out = await h
        .sts()
        .send(new AssumeRoleCommand({ RoleArn: DEMO_ROLE_ARN, RoleSessionName: 'test-run', ...input }));
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken)
        throw new Error('AssumeRole returned no credentials');
      const credentials = {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
      };
      return { ssm: h.ssm(credentials), credentials };
    },
    async restart(overrides = {}) {
      await fleet.close();
      currentOpts = { ...currentOpts, ...overrides, dataDir };
      fleet = await startDevfleet(currentOpts);
    },
    async close() {
      for (const c of clients) c.destroy();
      await fleet.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return h;
}

const TERMINAL = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);

/**
 * Polls GetCommandInvocation until the invocation is final (or `until` holds). It waits for that state, not for a
 * fixed time: the test's own timeout bounds it unless the caller gives `timeoutMs`.
 */
export async function waitInvocation(
  ssm: SSMClient,
  commandId: string,
  instanceId: string,
  until: (s: string | undefined) => boolean = (s) => TERMINAL.has(s ?? ''),
  timeoutMs = Infinity,
): Promise<GetCommandInvocationCommandOutput> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }));
    if (until(out.Status)) return out;
    if (Date.now() > deadline) throw new Error(`invocation ${commandId}/${instanceId} still ${out.Status}`);
    await sleep(25);
  }
}

/**
 * Polls ListCommandInvocations (Details) until every invocation of the command is final; like `waitInvocation`, it
 * has no deadline of its own unless the caller gives `timeoutMs`.
 */
export async function waitCommand(
  ssm: SSMClient,
  commandId: string,
  timeoutMs = Infinity,
): Promise<CommandInvocation[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await ssm.send(new ListCommandInvocationsCommand({ CommandId: commandId, Details: true }));
    const invs = out.CommandInvocations ?? [];
    if (invs.length > 0 && invs.every((i) => TERMINAL.has(i.Status ?? ''))) return invs;
    if (Date.now() > deadline)
      throw new Error(`command ${commandId} not finished: ${invs.map((i) => i.Status).join(',')}`);
    await sleep(25);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A fleet config with the demo role and the given instances. */
export function fleetWith(instances: FleetConfig['instances']): FleetConfig {
  return { ...defaultFleetConfig(ROOT), instances };
}

/** Alive and not a zombie (a killed orphan lingers as one until its new parent reaps it). */
export function isRunning(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  return !/^\d+ \(.*\) [ZX] /.test(stat);
}

/** Waits until a process is gone; a process that never goes fails the test by its timeout. */
export async function gone(pid: number): Promise<void> {
  while (isRunning(pid)) await sleep(20);
}

/** Waits until `read` yields a value that is not undefined (the test's timeout bounds the wait). */
export async function until<T>(read: () => Promise<T | undefined>, everyMs = 20): Promise<T> {
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    await sleep(everyMs);
  }
}

/** Waits until a file has non-blank text, and returns it trimmed. */
export function fileText(path: string): Promise<string> {
  return until(async () => {
    const text = (await readFile(path, 'utf8').catch(() => '')).trim();
    return text === '' ? undefined : text;
  });
}

/** SendCommand with the shell document; the returned Command of the answer. */
export async function sendCommand(
  ssm: SSMClient,
  ids: string[],
  commands: string[],
  extra: Partial<ConstructorParameters<typeof SendCommandCommand>[0]> = {},
) {
  const out = await ssm.send(
    new SendCommandCommand({
      DocumentName: 'AWS-RunShellScript',
      InstanceIds: ids,
      Parameters: { commands },
      ...extra,
    }),
  );
  return out.Command!;
}
