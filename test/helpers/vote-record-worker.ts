/**
 * A worker in a process of its own, for the crash tests of the deciding vote's record
 * (test/integration/vote-record.test.ts):
 *
 *   node --import tsx vote-record-worker.ts <temporal address> <namespace> <task queue> <audit db> <crash>
 *
 * Its records go to the real SQLite audit log; credentials and steps are the object-literal fakes.
 * `crash` is where it SIGKILLs itself, inside the local activity that writes several records at
 * once: `before-write` (the vote is in the workflow, nothing written) or `after-write` (written,
 * and the workflow task that would keep the activity's result never completes).
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities/index.ts';
import { createStsClient, ssmClients } from '../../src/activities/aws.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import { openAuditStore } from '../../src/store/audit-log.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { fakeActivities } from './fake-activities.ts';
import { quietTemporalLogs } from './temporal.ts';

const [address, namespace, taskQueue, auditFile, crash] = process.argv.slice(2);
if (!address || !namespace || !taskQueue || !auditFile || (crash !== 'before-write' && crash !== 'after-write')) {
  throw new Error(
    'usage: vote-record-worker.ts <address> <namespace> <task queue> <audit db> <before-write|after-write>',
  );
}
quietTemporalLogs();
const audit = await openAuditStore({ kind: 'sqlite', file: auditFile });
// Only the audit activities are taken from here: no AWS call is made, so nothing listens there.
const aws = { region: 'us-east-1', endpoint: 'http://127.0.0.1:1' };
const real = createActivities({
  audit,
  sts: createStsClient(aws),
  ssmFor: ssmClients(aws),
  pollIntervalMs: { min: 100, max: 500 },
  deliveryTimeoutSeconds: 60,
});
const activities = {
  ...fakeActivities().activities,
  recordEvent: real.recordEvent,
  async recordEvents(events: readonly NewAuditEvent[]) {
    if (crash === 'before-write') process.kill(process.pid, 'SIGKILL');
    await real.recordEvents(events);
    process.kill(process.pid, 'SIGKILL');
  },
};
const connection = await NativeConnection.connect({ address });
const worker = await Worker.create({ connection, namespace, taskQueue, workflowsPath: WORKFLOWS_PATH, activities });
await worker.run();
