import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { DEMO_INSTANCE_IDS, defaultFleetConfig } from '../../src/devfleet/index.ts';
import { ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

// The embedded stack's fleet file asks for seeded hosts, so the example runbooks have units, logs,
// packages and a certificate to act on from the first `npm start`; tests' fleets stay bare.
describe('devfleet seedHosts', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const root = (id: string) => join(h!.dataDir, 'instances', id, 'root');

  test('lays out every instance like a host when asked, once', async () => {
    h = await startHarness({ config: { ...defaultFleetConfig(ROOT), seedHosts: true } });
    const web = root(DEMO_INSTANCE_IDS['web-1']);
    expect(await readFile(join(web, 'run/systemd/units/web'), 'utf8')).toBe('active\n');
    expect(existsSync(join(root(DEMO_INSTANCE_IDS['db-1']), 'run/systemd/units/postgres'))).toBe(true);
    const marker = await readFile(join(web, '.devfleet-seeded'), 'utf8');
    await h.restart();
    expect(await readFile(join(web, '.devfleet-seeded'), 'utf8')).toBe(marker);
  });

  test('leaves instances bare by default', async () => {
    h = await startHarness();
    expect(existsSync(join(root(DEMO_INSTANCE_IDS['web-1']), '.devfleet-seeded'))).toBe(false);
  });
});
