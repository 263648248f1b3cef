/**
 * The TUI compiled once into one file, so `mechanic` shows its first real frame fast. Through tsx,
 * start-up pays for transforming each of our .tsx files and for resolving and evaluating some 700
 * modules (ink alone is ~200 of them); one pre-built file skips both.
 *
 * The compiled file lives in the user's cache directory (owner-only), keyed by a hash of every
 * file it was built from (our sources, the packages' files, the lockfile) and the Node version.
 * bin/mechanic.js loads it only when that hash still matches and the files are the user's own
 * and writable by nobody else; otherwise it runs the sources through tsx, and the TUI rebuilds
 * the cache in the background for the next start. The two sides share the recipe below; the
 * integration test pins that a build made here is what the next start runs.
 */
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Bumped when the manifest's meaning or the build's options change: older caches are then stale. */
export const CACHE_FORMAT = 1;

/** The checkout this code runs from (the cache is per checkout: two checkouts do not share one). */
export const ROOT = realpathSync(fileURLToPath(new URL('../../', import.meta.url)));
const ENTRY = path.join(ROOT, 'cli', 'tui', 'main.ts');

export interface Manifest {
  readonly format: number;
  readonly node: string;
  /** Every file the bundle was built from, relative to ROOT, sorted; the lockfile too. */
  readonly inputs: readonly string[];
  readonly digest: string;
  /** The bundle's file name, inside the cache directory. */
  readonly bundle: string;
}

/** `$XDG_CACHE_HOME/mechanic/tui/<checkout>` (else `~/.cache/…`); bin/mechanic.js computes the same. */
export function tuiCacheDir(env: NodeJS.ProcessEnv = process.env, root: string = ROOT): string {
  const xdg = env['XDG_CACHE_HOME'];
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(env['HOME'] ?? os.homedir(), '.cache');
  const checkout = createHash('sha256').update(root).digest('hex').slice(0, 16);
  return path.join(base, 'mechanic', 'tui', checkout);
}

/**
 * The hash the cache is keyed by: the format, the Node version, then each input's path and
 * content. A file that is gone makes this throw (the cache is then stale).
 */
export function inputsDigest(root: string, inputs: readonly string[], node: string = process.version): string {
  const h = createHash('sha256').update(`mechanic-tui/${CACHE_FORMAT}\n${node}\n`);
  for (const rel of inputs) {
    h.update(`${rel}\n`);
    h.update(readFileSync(path.join(root, rel)));
    h.update('\n');
  }
  return h.digest('hex');
}

/**
 * Builds the TUI into `dir` with esbuild (installed with tsx) and writes its manifest last, so a
 * reader never sees a manifest naming a half-written bundle. Safe to run from two processes at once.
 */
export async function buildTuiCache(dir: string = tuiCacheDir()): Promise<Manifest> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [ENTRY],
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    metafile: true,
    // Smaller to parse; names are kept so a bug's stack still reads.
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'silent',
    // The compiled TUI never rebuilds itself (only a TUI run from sources does): no esbuild inside.
    external: ['esbuild'],
    define: { 'process.env.NODE_ENV': '"production"', __MECHANIC_TUI_COMPILED__: 'true' },
    // CommonJS packages inside an ES module still call require() for Node's own modules.
    banner: {
      js: "import { createRequire as __mechanicRequire } from 'node:module'; const require = __mechanicRequire(import.meta.url);",
    },
    plugins: [
      {
        // ink loads React's devtools only when DEV=true, from a package mechanic does not ship.
        name: 'no-ink-devtools',
        setup(build) {
          build.onResolve({ filter: /[/\\]devtools\.js$/ }, (args) =>
            /[/\\]ink[/\\]/.test(args.importer) ? { path: 'ink-devtools', namespace: 'mechanic-empty' } : undefined,
          );
          build.onLoad({ filter: /.*/, namespace: 'mechanic-empty' }, () => ({
            contents: 'throw new Error("the compiled mechanic TUI has no React devtools; unset DEV");',
          }));
        },
      },
    ],
  });
  const code = result.outputFiles[0]?.contents;
  if (!code) throw new Error('esbuild produced no output for the TUI');
  const inputs = Object.keys(result.metafile.inputs)
    .filter((i) => !i.includes(':'))
    .map((i) => path.relative(ROOT, path.resolve(ROOT, i)));
  try {
    await stat(path.join(ROOT, 'package-lock.json'));
    inputs.push('package-lock.json');
  } catch {
    // no lockfile (an installed package): the packages' own files are still hashed
  }
  inputs.sort();
  const digest = inputsDigest(ROOT, inputs);
  const manifest: Manifest = {
    format: CACHE_FORMAT,
    node: process.version,
    inputs,
    digest,
    bundle: `tui-${digest.slice(0, 16)}.mjs`,
  };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await writeAtomically(path.join(dir, manifest.bundle), code);
  await writeAtomically(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest)}\n`);
  // Older bundles of this checkout are never loaded again.
  for (const name of await readdir(dir)) {
    if (/^tui-[0-9a-f]{16}\.mjs$/.test(name) && name !== manifest.bundle)
      await rm(path.join(dir, name), { force: true });
  }
  await rm(path.join(dir, 'build-error.txt'), { force: true });
  return manifest;
}

/**
 * Rebuilds the cache in the background of a TUI started from sources. A failure only means the
 * next start is slow again; its reason is kept beside the cache (the screen belongs to the TUI).
 */
export function refreshTuiCacheLater(delayMs: number, dir: string = tuiCacheDir()): () => void {
  const timer = setTimeout(() => {
    buildTuiCache(dir).catch((e: unknown) =>
      writeFile(path.join(dir, 'build-error.txt'), `${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`, {
        mode: 0o600,
      }).catch(() => undefined),
    );
  }, delayMs);
  // Quitting the TUI does not wait for a build that has not begun.
  timer.unref();
  return () => clearTimeout(timer);
}

async function writeAtomically(file: string, data: string | Uint8Array): Promise<void> {
  const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
}
