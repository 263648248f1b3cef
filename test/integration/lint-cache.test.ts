/**
 * `mechanic runbook lint` (and `runbook schema`) run from a compiled cache, like the TUI: the first
 * run from the sources compiles it after printing its answer, later runs load it while it is fresh,
 * own and owner-only. What they print never depends on which one ran.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ROOT, buildCache, cacheDir, inputsDigest, type Manifest } from '../../cli/tui/bundle-cache.ts';
import { BIN } from '../helpers/cli.ts';

const CORPUS = 'test/corpus/broken-runbooks';
/** What a bundle that is not the real one prints: seen only when bin/mechanic.js loaded the cache. */
const STUB =
  'export async function main(argv) { process.stdout.write(`STUB ${JSON.stringify(argv)}\\n`); return 7; }\n';

let home = '';
let env: NodeJS.ProcessEnv = {};
let dir = '';

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'mechanic-lint-cache-'));
  env = { ...process.env, XDG_CACHE_HOME: home };
  delete env['MECHANIC_LINT_CACHE'];
  dir = cacheDir('lint', env);
});
afterAll(async () => {
  if (home) await rm(home, { recursive: true, force: true });
});

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function mechanic(args: readonly string[], extra: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env: { ...env, ...extra }, timeout: 60_000 },
      (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr }),
    );
  });
}

const sources = (args: readonly string[]) => mechanic(args, { MECHANIC_LINT_CACHE: 'off' });

/** Runs a compiled bundle's `main` as bin/mechanic.js does, whether or not its cache is still fresh. */
function compiled(bundle: string, args: readonly string[]): Promise<Result> {
  const script = `const { main } = await import(${JSON.stringify(pathToFileURL(bundle).href)});
process.exitCode = await main(${JSON.stringify(args)});`;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { cwd: ROOT, env, timeout: 60_000 },
      (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr }),
    );
  });
}
const manifestFile = () => path.join(dir, 'manifest.json');
const readManifest = async () => JSON.parse(await readFile(manifestFile(), 'utf8')) as Manifest;

/** Puts the stub in place of the bundle the manifest names; the real bundle is returned to put back. */
async function stubBundle(): Promise<() => Promise<void>> {
  const file = path.join(dir, (await readManifest()).bundle);
  const real = await readFile(file);
  await writeFile(file, STUB, { mode: 0o600 });
  return () => writeFile(file, real, { mode: 0o600 });
}

describe('the compiled lint', () => {
  test('a run from the sources compiles it; the next run loads it and prints exactly the same', async () => {
    await rm(dir, { recursive: true, force: true });
    const first = await mechanic(['runbook', 'lint', CORPUS]);
    expect(first.code).toBe(1);
    expect(first.stdout).toContain(`${CORPUS}/alias-bomb.yaml:`);
    const manifest = await readManifest();
    expect(manifest.bundle).toMatch(/^lint-[0-9a-f]{16}\.mjs$/);
    expect(manifest.inputs).toContain('src/core/lint.ts');
    expect(manifest.inputs).toContain('cli/commands/runbook-lint.ts');

    // The cache is what the next run loads: a stand-in bundle answers instead of the sources.
    const restore = await stubBundle();
    expect(await mechanic(['runbook', 'lint', CORPUS, '--json'])).toEqual({
      code: 7,
      stdout: `STUB ["lint","${CORPUS}","--json"]\n`,
      stderr: '',
    });
    await restore();

    // The compiled lint against the sources, on every kind of answer: problems, JSON, clean files,
    // usage errors, the schema. (Run directly: sources edited meanwhile would make bin/mechanic.js
    // run the sources on both sides.)
    const bundle = path.join(dir, manifest.bundle);
    const cases: string[][] = [
      ['runbook', 'lint', CORPUS],
      ['runbook', 'lint', `${CORPUS}/located`, `${CORPUS}/twin-a.yaml`, `${CORPUS}/twin-b.yaml`, '--json'],
      ['runbook', 'lint', 'runbooks'],
      ['runbook', 'lint', 'no-such-runbooks'],
      ['runbook', 'lint', 'no-such-runbooks', '--json'],
      ['runbook', 'lint'],
      ['runbook', 'schema'],
    ];
    for (const args of cases) {
      expect(await compiled(bundle, args.slice(1)), args.join(' ')).toEqual(await sources(args));
    }
    // A dozen fresh processes, a few of them compiling: minutes on a loaded machine.
  }, 300_000);

  test('only a fresh cache of this user is loaded: a changed input, an open folder or MECHANIC_LINT_CACHE=off runs the sources', async () => {
    const built = await buildCache('lint', dir);
    // One more input, outside the checkout, that the test can change as an edit would change a source.
    const input = path.join(home, 'input.ts');
    await writeFile(input, 'export const a = 1;\n');
    const inputs = [...built.inputs, path.relative(ROOT, input)];
    const keyed: Manifest = { ...built, inputs, digest: inputsDigest(ROOT, inputs, process.version, 'lint') };
    await writeFile(manifestFile(), JSON.stringify(keyed), { mode: 0o600 });
    await stubBundle();
    const stubbed = { code: 7, stdout: `STUB ["lint","runbooks"]\n`, stderr: '' };
    expect(await mechanic(['runbook', 'lint', 'runbooks'])).toEqual(stubbed);

    const real = await sources(['runbook', 'lint', 'runbooks']);
    expect(real.code).toBe(0);
    expect(await mechanic(['runbook', 'lint', 'runbooks'], { MECHANIC_LINT_CACHE: 'off' })).toEqual(real);
    // Code others could replace is never run.
    await chmod(dir, 0o770);
    expect(await mechanic(['runbook', 'lint', 'runbooks'])).toEqual(real);
    // That run rebuilt the cache (and closed the folder again): put the keyed stub back.
    expect((await readManifest()).inputs).not.toContain(path.relative(ROOT, input));
    await writeFile(manifestFile(), JSON.stringify(keyed), { mode: 0o600 });
    await writeFile(path.join(dir, keyed.bundle), STUB, { mode: 0o600 });
    expect(await mechanic(['runbook', 'lint', 'runbooks'])).toEqual(stubbed);

    // An input changed since the build: stale, so the sources answer and compile it again.
    await writeFile(input, 'export const a = 2;\n');
    expect(await mechanic(['runbook', 'lint', 'runbooks'])).toEqual(real);
    const rebuilt = await readManifest();
    expect(rebuilt.inputs).not.toContain(path.relative(ROOT, input));
    expect(rebuilt.digest).toBe(inputsDigest(ROOT, rebuilt.inputs, process.version, 'lint'));
  }, 300_000);

  test('a cache that cannot be written changes nothing in the answer', async () => {
    // The cache "folder" is a file: compiling fails after lint has answered, and says nothing.
    const blocked = path.join(home, 'not-a-folder');
    await writeFile(blocked, '');
    const args = ['runbook', 'lint', CORPUS];
    const r = await mechanic(args, { XDG_CACHE_HOME: blocked });
    expect(r).toEqual(await sources(args));
    expect(r.code).toBe(1);
  }, 300_000);
});
