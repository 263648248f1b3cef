import type { TestProject } from 'vitest/node';
import { findTemporalCli } from '../src/embedded/provision.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of the provisioned `temporal` CLI, or '' when it could not be had (see `temporalCliError`). */
    temporalCli: string;
    /** Why provisioning failed; integration tests report it, unit tests run regardless. */
    temporalCliError: string;
  }
}

/**
 * Provisions the Temporal CLI once per test run, before any worker starts, so parallel test files never race to build
 * it and the first-time Go build (minutes) shows its progress once. A failure does not abort the run: unit tests do
 * not need Temporal, and integration tests fail with the reason when they ask for a server.
 */
export default async function setup(project: TestProject): Promise<void> {
  try {
    const cli = await findTemporalCli({ onProgress: (line) => console.log(line) });
    project.provide('temporalCli', cli);
    project.provide('temporalCliError', '');
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.warn(`Temporal integration tests will fail: ${message}`);
    project.provide('temporalCli', '');
    project.provide('temporalCliError', message);
  }
}
