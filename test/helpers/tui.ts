/**
 * A fake of the typed API client for the TUI's component tests: the contract's shapes, calls
 * recorded, faults on demand, and event streams the test feeds record by record.
 */
import { EventEmitter } from 'node:events';
import type { ReactElement } from 'react';
import { render as inkRender } from 'ink';
import type { ApiClient, StreamOptions } from '../../src/api/client.ts';
import type { RouteInput, RouteName, RouteOutput } from '../../src/api/contract.ts';
import type { AuditRecordInfo, RunbookInfo } from '../../src/api/schemas.ts';
import { auditEvent, requestedEvent, type AuditEventData, type AuditEventType } from '../../src/core/audit-events.ts';
import type { Plan } from '../../src/core/plan.ts';
import { UserError } from '../../src/core/errors.ts';

export const DIGEST = 'a'.repeat(64);

export const RUNBOOKS: RunbookInfo[] = [
  {
    name: 'deploy-web',
    version: 1,
    description: 'Install a release of the web service',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    parameters: {
      release: {
        type: 'string',
        description: 'The release to deploy',
        pattern: '^v\\d+\\.\\d+\\.\\d+$',
        maxLength: 256,
      },
      note: { type: 'string', default: '', maxLength: 200 },
    },
    targets: { tags: { Role: 'web' } },
    approval: { required: 1, expiresAfterMinutes: 60, groups: ['web-leads', 'sre'] },
    owners: ['team-web'],
    risk: 'high',
    steps: [
      { name: 'install', script: 'echo installed {{ release }}', timeoutSeconds: 60 },
      { name: 'verify', script: 'echo ok', timeoutSeconds: 30 },
    ],
    onFailure: [{ name: 'report', script: 'echo failed', timeoutSeconds: 30 }],
    digest: 'b'.repeat(64),
    source: 'runbooks/deploy-web.yaml',
  },
  {
    name: 'rotate-logs',
    version: 2,
    description: 'Compress the current application log',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    parameters: {
      keep: { type: 'integer', min: 1, max: 30, default: 5 },
      level: { type: 'enum', values: ['info', 'debug'], default: 'info' },
      dry: { type: 'boolean', default: false },
    },
    targets: { tags: { Env: 'staging' } },
    approval: { required: 2, expiresAfterMinutes: 30, groups: [] },
    owners: ['sre'],
    risk: 'low',
    steps: [{ name: 'rotate', script: 'echo rotate', timeoutSeconds: 60 }],
    onFailure: [],
    digest: 'c'.repeat(64),
    source: 'runbooks/rotate-logs.yaml',
  },
];

export const TARGETS = [
  { instanceId: 'i-0000000000000web1', name: 'web-1' },
  { instanceId: 'i-0000000000000web2', name: 'web-2' },
];

/** The plan's runbook section, with what the catalog says about deploy-web (risk, owners, groups). */
const DEPLOY_WEB_SECTION = {
  name: 'deploy-web',
  version: 1,
  digest: 'b'.repeat(64),
  description: 'Install a release of the web service',
  risk: 'high',
  owners: ['team-web'],
  approvalGroups: ['web-leads', 'sre'],
};

export function makePlan(overrides: Partial<Plan> = {}): Plan {
  const runbook: Plan['runbook'] = DEPLOY_WEB_SECTION as Plan['runbook'];
  return {
    executionId: 'mx-test00001',
    runbook,
    requester: 'alice',
    reason: 'ship the login fix',
    params: { release: 'v1.2.3', note: '' },
    targets: TARGETS,
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    region: 'us-east-1',
    steps: [
      { name: 'install', script: "echo installed 'v1.2.3'", timeoutSeconds: 60 },
      { name: 'verify', script: 'echo ok', timeoutSeconds: 30 },
    ],
    onFailure: [{ name: 'report', script: 'echo failed', timeoutSeconds: 30 }],
    approval: { required: 1, expiresAfterSeconds: 3600 },
    budgetSeconds: 900,
    sessionPolicy: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'ssm:SendCommand' }],
    }),
    createdAt: '2026-11-30T05:00:00.000Z',
    ...overrides,
  };
}

type Handler<N extends RouteName> = (input: Partial<RouteInput<N>>) => RouteOutput<N> | Promise<RouteOutput<N>>;

export interface FakeApi extends ApiClient {
  readonly calls: { name: RouteName; input: unknown }[];
  /** Replace one route's answer. */
  on<N extends RouteName>(name: N, handler: Handler<N>): void;
  /** Feed a record to every open stream of this execution (and to the 'all' streams). */
  emit(record: AuditRecordInfo): void;
  /** Drop every open stream as a lost connection would. */
  drop(): void;
  /** How many times a stream was opened, and with which Last-Event-ID. */
  readonly opened: { target: string; after: number | undefined }[];
  /** Records every new execution stream starts with (its history). */
  readonly history: Map<string, AuditRecordInfo[]>;
}

let seq = 0;
/** A record as the server streams it. */
export function record<T extends AuditEventType>(
  type: T,
  executionId: string,
  data: AuditEventData<T>,
  actor = 'mechanic',
  at = '2026-11-30T05:00:10.000Z',
): AuditRecordInfo {
  const e = auditEvent(type, { eventId: `${executionId}:${++seq}:${type}`, executionId, actor, at, data });
  return {
    ...e,
    data: e.data,
    seq,
    prevHash: '0'.repeat(64),
    hash: '1'.repeat(64),
    recordedAt: at,
  };
}

export function requested(plan: Plan = makePlan()): AuditRecordInfo {
  const e = requestedEvent({ plan, planDigest: DIGEST });
  return {
    ...e,
    data: e.data,
    seq: ++seq,
    prevHash: '0'.repeat(64),
    hash: '1'.repeat(64),
    recordedAt: plan.createdAt,
  };
}

export function viewOf(plan: Plan, status: RouteOutput<'getExecution'>['execution']['status'] = 'awaiting_approval') {
  return {
    executionId: plan.executionId,
    status,
    planDigest: DIGEST,
    plan: { ...plan, targets: [...plan.targets], steps: [...plan.steps], onFailure: [...plan.onFailure] },
    approval: { status: 'pending' as const, approvedBy: [], missing: plan.approval.required },
    votes: [],
    steps: [
      ...plan.steps.map((s) => ({ name: s.name, phase: 'main' as const, status: 'pending' as const, instances: [] })),
      ...plan.onFailure.map((s) => ({
        name: s.name,
        phase: 'onFailure' as const,
        status: 'pending' as const,
        instances: [],
      })),
    ],
  } as RouteOutput<'getExecution'>['execution'];
}

export function summaryOf(
  plan: Plan,
  status: RouteOutput<'getExecution'>['execution']['status'] = 'awaiting_approval',
) {
  return {
    id: plan.executionId,
    runbookName: plan.runbook.name,
    runbookVersion: plan.runbook.version,
    operator: plan.requester,
    reason: plan.reason,
    status,
    planDigest: DIGEST,
    params: plan.params,
    targets: plan.targets.map((t) => t.instanceId),
    approvals: [],
    createdAt: plan.createdAt,
    updatedAt: plan.createdAt,
    finishedAt: null,
  };
}

export function fakeApi(user = { id: 'alice', displayName: 'Alice', roles: ['operator', 'approver'] }): FakeApi {
  const calls: { name: RouteName; input: unknown }[] = [];
  const history = new Map<string, AuditRecordInfo[]>();
  const executions = new Map<string, RouteOutput<'getExecution'>['execution']>();
  const opened: { target: string; after: number | undefined }[] = [];
  type Sub = { target: string; push: (r: AuditRecordInfo) => void; fail: (e: Error) => void };
  const subs = new Set<Sub>();
  const handlers: { [N in RouteName]?: Handler<N> } = {
    me: () => ({ user }),
    listRunbooks: () => ({ runbooks: RUNBOOKS, invalid: [] }),
    getRunbook: (i) => ({ runbook: RUNBOOKS.find((r) => r.name === i.params?.name)! }),
    plan: (i) => {
      const body = i.body!;
      const targets = body.targets ? TARGETS.filter((t) => body.targets!.includes(t.instanceId)) : TARGETS;
      const plan = makePlan({
        executionId: 'mx-dryrun0001',
        params: body.params ?? {},
        reason: body.reason,
        targets,
        runbook: { ...makePlan().runbook, name: body.runbook },
      });
      return {
        plan: { ...plan, targets: [...plan.targets], steps: [...plan.steps], onFailure: [...plan.onFailure] },
        planDigest: DIGEST,
      };
    },
    launch: (i) => {
      const plan = makePlan({ params: i.body!.params ?? {}, reason: i.body!.reason });
      executions.set(plan.executionId, viewOf(plan));
      history.set(plan.executionId, [requested(plan)]);
      return { executionId: plan.executionId, plan: viewOf(plan).plan, planDigest: DIGEST };
    },
    listExecutions: () => ({ executions: [] }),
    getExecution: (i) => {
      const view = executions.get(i.params!.id);
      if (!view) throw new UserError('EXECUTION_NOT_FOUND', `there is no execution ${i.params!.id}`);
      return { execution: view };
    },
    vote: () => ({ approval: { status: 'approved', approvedBy: [user.id] } }),
    cancel: () => ({ status: 'cancelled' }),
  };

  const api: FakeApi = {
    url: 'http://fake',
    calls,
    opened,
    history,
    on(name, handler) {
      (handlers as Record<string, unknown>)[name] = handler;
    },
    async call(name, input = {}) {
      calls.push({ name, input });
      const h = handlers[name];
      if (!h) throw new Error(`fake API: no handler for ${name}`);
      return h(input);
    },
    async download(name) {
      throw new Error(`fake API: the TUI does not download (${name})`);
    },
    emit(r) {
      const list = history.get(r.executionId ?? '') ?? [];
      list.push(r);
      if (r.executionId) history.set(r.executionId, list);
      for (const s of subs) if (s.target === '*' || s.target === r.executionId) s.push(r);
    },
    drop() {
      for (const s of subs) s.fail(new UserError('SERVER_UNAVAILABLE', 'the mechanic API is not answering'));
    },
    async *events(target, options: StreamOptions = {}) {
      const key = target === 'all' ? '*' : target.executionId;
      opened.push({ target: key, after: options.after });
      const queue: AuditRecordInfo[] =
        key === '*'
          ? []
          : [...(history.get(key) ?? [])].filter((r) => options.after === undefined || r.seq > options.after);
      let wake: (() => void) | undefined;
      let failure: Error | undefined;
      const sub: Sub = {
        target: key,
        push: (r) => {
          queue.push(r);
          wake?.();
        },
        fail: (e) => {
          failure = e;
          wake?.();
        },
      };
      subs.add(sub);
      const onAbort = () => wake?.();
      options.signal?.addEventListener('abort', onAbort);
      try {
        for (;;) {
          if (options.signal?.aborted) return;
          if (failure) throw failure;
          const next = queue.shift();
          if (next) {
            yield next;
            continue;
          }
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        subs.delete(sub);
        options.signal?.removeEventListener('abort', onAbort);
      }
    },
  };
  // Executions the test registers up front.
  (api as FakeApi & { executions: typeof executions }).executions = executions;
  return api;
}

export function executionsOf(api: FakeApi): Map<string, RouteOutput<'getExecution'>['execution']> {
  return (api as FakeApi & { executions: Map<string, RouteOutput<'getExecution'>['execution']> }).executions;
}

/** Lets React and ink settle: timers of 0 ms and pending promises. */
export async function tick(ms = 0): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Waits until `frame()` satisfies `test` (or fails after a while with the last frame). */
export async function until(
  frame: () => string | undefined,
  test: (f: string) => boolean,
  what = 'the frame',
): Promise<string> {
  // Patient (about 10 s): a loaded machine renders slowly; this waits, it does not time anything.
  for (let i = 0; i < 1000; i++) {
    const f = frame() ?? '';
    if (test(f)) return f;
    await tick(10);
  }
  throw new Error(`${what} never matched; last frame:\n${frame() ?? ''}`);
}

export const KEY = {
  up: '\u001b[A',
  down: '\u001b[B',
  right: '\u001b[C',
  left: '\u001b[D',
  enter: '\r',
  esc: '\u001b',
  tab: '\t',
  backspace: '\u007f',
  ctrlC: '\u0003',
};

/** Writes keys the way a person types: after the screen has settled, so no key is lost. */
export async function press(r: { stdin: { write(data: string): void } }, ...keys: string[]): Promise<void> {
  for (const k of keys) {
    await tick(5);
    r.stdin.write(k);
  }
  await tick(5);
}

/**
 * ink-testing-library's render, at a terminal size of our choosing (its own is always 100
 * columns, no rows): the frame is what a terminal of `columns`×`rows` would show.
 */
export function renderAt(tree: ReactElement, columns: number, rows: number) {
  class Stdout extends EventEmitter {
    readonly columns = columns;
    readonly rows = rows;
    readonly isTTY = true;
    last: string | undefined;
    write = (frame: string) => {
      this.last = frame;
      return true;
    };
  }
  class Stdin extends EventEmitter {
    readonly isTTY = true;
    private data: string | null = null;
    write = (data: string) => {
      this.data = data;
      this.emit('readable');
      this.emit('data', data);
    };
    read = () => {
      const d = this.data;
      this.data = null;
      return d;
    };
    setEncoding() {}
    setRawMode() {}
    resume() {}
    pause() {}
    ref() {}
    unref() {}
  }
  const stdout = new Stdout();
  const stdin = new Stdin();
  const instance = inkRender(tree, {
    stdout: stdout as unknown as NodeJS.WriteStream,
    stderr: new Stdout() as unknown as NodeJS.WriteStream,
    stdin: stdin as unknown as NodeJS.ReadStream,
    debug: true,
    exitOnCtrlC: false,
    patchConsole: false,
  });
  return { lastFrame: () => stdout.last, stdin, unmount: () => instance.unmount() };
}
