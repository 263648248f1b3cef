import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';
import { createLogger } from '../log.ts';
import { UserError } from '../core/errors.ts';
import { exitIfStoppedWhileStarting } from '../embedded/part.ts';
import { parseFleetConfig } from './config.ts';
import { startDevfleet } from './server.ts';

/** The devfleet process (`mechanic devfleet`): the local stand-in for STS and SSM, until SIGINT/SIGTERM. */
export async function runDevfleet(config: Config): Promise<number> {
  const log = createLogger('devfleet', config.logLevel);
  const { stopped, started } = exitIfStoppedWhileStarting(config.supervised, () => log.info('stopped while starting'));
  const dataDir = path.join(config.home, 'devfleet');
  const file = config.devfleetConfigFile;
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch {
    throw new UserError(
      'CONFIG_INVALID',
      `the fleet file ${file} cannot be read; "mechanic dev" writes one, or set MECHANIC_DEVFLEET_CONFIG`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new UserError('CONFIG_INVALID', `the fleet file ${file} is not valid JSON`);
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const fleet = await startDevfleet({ dataDir, config: parseFleetConfig(json), port: config.aws.devfleetPort });
  started();
  log.info({ endpoint: fleet.endpoint }, 'ready');
  await stopped;
  await fleet.close();
  log.info('stopped');
  return 0;
}
