import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { createLogger, untilSignal } from '../../src/log.ts';
import { parseFleetConfig } from '../../src/devfleet/config.ts';
import { startDevfleet } from '../../src/devfleet/server.ts';
import { UserError } from '../../src/core/errors.ts';

/** `mechanic devfleet`: the local stand-in for STS and SSM, until SIGINT/SIGTERM. */
export async function run(): Promise<number> {
  const config = loadConfig();
  const log = createLogger('devfleet', config.logLevel);
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
  await mkdir(dataDir, { recursive: true });
  const fleet = await startDevfleet({ dataDir, config: parseFleetConfig(json), port: config.aws.devfleetPort });
  log.info({ endpoint: fleet.endpoint }, 'ready');
  await untilSignal(config.supervised);
  await fleet.close();
  log.info('stopped');
  return 0;
}
