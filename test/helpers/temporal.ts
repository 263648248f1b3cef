import { inject } from 'vitest';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startDevServer } from '../../src/embedded/dev-server.ts';
import type { DevServer } from '../../src/embedded/dev-server.ts';

export interface TestTemporal {
  address: string;
  namespace: string;
  cliPath: string;
  server: DevServer;
  teardown(): Promise<void>;
}

/**
 * A real Temporal dev server for one test file: the CLI provisioned by global-setup, a random free port, in memory
 * unless `dbFile` is given. Call `teardown()` in `afterAll`; it stops the process and waits for it to exit.
 */
export async function startTestTemporal(opts: { dbFile?: string } = {}): Promise<TestTemporal> {
  const cliPath = inject('temporalCli');
  if (cliPath === '') {
    throw new Error(`No temporal CLI for integration tests: ${inject('temporalCliError')}`);
  }
  const server = await startDevServer({ cliPath, ...(opts.dbFile !== undefined && { dbFile: opts.dbFile }) });
  return {
    address: server.address,
    namespace: server.namespace,
    cliPath,
    server,
    teardown: () => server.stop(),
  };
}

let quieted = false;

/** Keeps the SDK's own INFO lines (worker state changes) out of test output; warnings still show. */
export function quietTemporalLogs(): void {
  if (quieted) return;
  quieted = true;
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Already installed by an earlier worker in this process: keep that runtime.
  }
}
