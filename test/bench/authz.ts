/**
 * `node --import tsx test/bench/authz.ts`: what asking Cedar costs per request, against the role
 * table it replaced, in the same run on the same machine. Goal: p99 under 1 ms.
 *
 * Each sample is one `authorize` call of the kind a route makes (principal entity with its groups,
 * the resource entity, the context), on the shipped policies, pre-parsed once. The requests cycle
 * through allow and deny answers, since a denial also builds its sentence.
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { roleAuthorizer, type Action, type Authorizer, type Resource } from '../../src/authz/authorizer.ts';
import { loadCedarAuthorizer } from '../../src/authz/cedar-authorizer.ts';
import type { User } from '../../src/authz/users.ts';

const users: User[] = [
  { id: 'alice', displayName: 'Alice', roles: ['operator', 'approver'], groups: ['sre'] },
  { id: 'bob', displayName: 'Bob', roles: ['approver'], groups: ['sre'] },
  { id: 'dave', displayName: 'Dave', roles: ['auditor'], groups: ['audit'] },
];
const requests: [Action, Resource][] = [
  ['readRunbook', { kind: 'catalog' }],
  ['launch', { kind: 'catalog' }],
  ['readRun', { kind: 'execution', id: 'mx-1' }],
  ['approve', { kind: 'execution', id: 'mx-1', requester: 'alice' }],
  ['cancel', { kind: 'execution', id: 'mx-1', requester: 'alice' }],
  ['readAudit', { kind: 'audit' }],
  [
    'approve',
    {
      kind: 'execution',
      id: 'mx-2',
      requester: 'erin',
      runbook: { name: 'failover-db', risk: 'high', approvalGroups: ['sre', 'dba'] },
      approvals: 1,
      approvedGroups: ['sre'],
    },
  ],
];

function measure(authorizer: Authorizer, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const user = users[i % users.length]!;
    const [action, resource] = requests[i % requests.length]!;
    const t = performance.now();
    authorizer.authorize(user, action, resource, { channel: 'cli' });
    out.push(performance.now() - t);
  }
  return out.sort((a, b) => a - b);
}

const q = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;

const cedar = await loadCedarAuthorizer();
const table = roleAuthorizer();
const n = 5000;
measure(cedar, 500);
measure(table, 500);
const cpu0 = process.cpuUsage();
const c = measure(cedar, n);
const cpu = process.cpuUsage(cpu0);
const t = measure(table, n);
process.stdout.write(
  [
    `authz: one decision, n=${n}`,
    `  cedar (shipped policies, pre-parsed)  median ${us(q(c, 0.5))}  p95 ${us(q(c, 0.95))}  p99 ${us(q(c, 0.99))}`,
    `  role table (baseline)                 median ${us(q(t, 0.5))}  p95 ${us(q(t, 0.95))}  p99 ${us(q(t, 0.99))}`,
    `  cedar CPU time per decision (mean, not counting time other processes took): ${us((cpu.user + cpu.system) / 1000 / n)}`,
    `  load average ${loadavg()[0]!.toFixed(1)} (tails grow with other work on the machine)`,
    `  ratio of medians ${(q(c, 0.5) / q(t, 0.5)).toFixed(0)}×; goal p99 < 1 ms: ${q(c, 0.99) < 1 ? 'met' : 'NOT met'}`,
  ].join('\n') + '\n',
);
