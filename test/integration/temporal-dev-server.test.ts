import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { startDevServer, waitForTemporal } from '../../src/embedded/dev-server.ts';
import type { DevServer } from '../../src/embedded/dev-server.ts';
import { getFreePort } from '../../src/embedded/ports.ts';
import { searchAttributes } from '../../src/temporal/search-attributes.ts';
import { startTestTemporal } from '../helpers/temporal.ts';
import type { waitForFinish } from '../fixtures/workflows/temporal-plumbing.ts';

let dir: string;
/** Servers a failing test may leave running; stopped in afterAll whatever happened. */
const started: DevServer[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mechanic-devserver-'));
});

afterAll(async () => {
  await Promise.all(started.map((server) => server.stop()));
  await rm(dir, { recursive: true, force: true });
});

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('persistence', () => {
  test('a workflow survives a stop and start on the same database file, and lost search attributes return', async () => {
    const dbFile = path.join(dir, 'persist', 'temporal.db');
    const workflowId = `persist-${randomUUID()}`;

    const first = await startTestTemporal({ dbFile });
    started.push(first.server);
    // Write-ahead logged (each commit synced): the rollback journal costs several times as much per workflow task.
    const db = new Database(dbFile, { readonly: true, fileMustExist: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
    const firstConnection = await Connection.connect({ address: first.address });
    // No worker: a started workflow stays open with its first task scheduled, which is all persistence needs.
    const handle = await new Client({ connection: firstConnection, namespace: first.namespace }).workflow.start<
      typeof waitForFinish
    >('waitForFinish', { taskQueue: 'nobody-polls', workflowId });
    // As if the file predated this attribute: the next start must register it again.
    await firstConnection.operatorService.removeSearchAttributes({
      namespace: first.namespace,
      searchAttributes: [searchAttributes.status.name],
    });
    await firstConnection.close();
    await first.teardown();
    expect(processExists(first.server.pid)).toBe(false);

    const second = await startTestTemporal({ dbFile });
    started.push(second.server);
    const connection = await Connection.connect({ address: second.address });
    try {
      const description = await new Client({ connection, namespace: second.namespace }).workflow
        .getHandle(workflowId)
        .describe();
      expect(description.runId).toBe(handle.firstExecutionRunId);
      expect(description.status.name).toBe('RUNNING');
      expect(description.type).toBe('waitForFinish');
      const { customAttributes } = await connection.operatorService.listSearchAttributes({
        namespace: second.namespace,
      });
      expect(customAttributes?.[searchAttributes.status.name]).toBeDefined();
    } finally {
      await connection.close();
      await second.teardown();
    }
  });
});

describe('start and stop', () => {
  test('stop() resolves after the process has exited, and a second stop() is harmless', async () => {
    const temporal = await startTestTemporal();
    started.push(temporal.server);
    expect(temporal.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(temporal.server.uiUrl).toBeUndefined();
    await temporal.teardown();
    expect(processExists(temporal.server.pid)).toBe(false);
    await temporal.server.stop();
    await expect(waitForTemporal(temporal.address, 'default', 300)).rejects.toMatchObject({
      code: 'TEMPORAL_UNAVAILABLE',
    });
  });

  test('the UI, a named namespace and a log file are honoured', async () => {
    const logFile = path.join(dir, 'logs', 'temporal.log');
    const server = await startDevServer({
      cliPath: inject('temporalCli'),
      ui: true,
      namespace: 'mechanic-test',
      logFile,
    });
    started.push(server);
    try {
      expect(server.uiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const response = await fetch(server.uiUrl ?? '');
      expect(response.status).toBeLessThan(500);
      await waitForTemporal(server.address, 'mechanic-test', 5_000);
    } finally {
      await server.stop();
    }
    // The CLI prints its banner on stdout, which goes to the log.
    expect(await readFile(logFile, 'utf8')).toContain('Server:');
  });

  test('a process that dies while starting is reported with its last output', async () => {
    // Hold the port so the server cannot bind it; an explicit port is never retried.
    const port = await getFreePort();
    // Drop whatever connects (the readiness probe does), so closing the blocker does not wait on open sockets.
    const blocker = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const error = await startDevServer({ cliPath: inject('temporalCli'), port }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'TEMPORAL_UNAVAILABLE' });
      expect((error as Error).message).toMatch(/exited with 1 while starting; its last output:\n.*port/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  test('a CLI path that cannot run is a TEMPORAL_CLI_UNAVAILABLE error', async () => {
    const error = await startDevServer({ cliPath: path.join(dir, 'no-such-temporal') }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TEMPORAL_CLI_UNAVAILABLE' });
  });

  test('waitForTemporal gives up with one clear sentence', async () => {
    const port = await getFreePort();
    const error = await waitForTemporal(`127.0.0.1:${port}`, 'default', 500).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TEMPORAL_UNAVAILABLE' });
    expect((error as Error).message).toMatch(
      new RegExp(`^Temporal at 127\\.0\\.0\\.1:${port} did not answer for namespace "default" within \\d+s`),
    );
  });
});
