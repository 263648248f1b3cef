/**
 * Commands people wait for, compiled once into one file each: the TUI, so `mechanic` shows its
 * first real frame fast, and `mechanic runbook lint` (with `runbook schema`), which pre-commit
 * hooks run on every commit. Through tsx, start-up pays for transforming each of our .ts/.tsx
 * files and for resolving and evaluating hundreds of modules (ink alone is ~200 of them); one
 * pre-built file skips both.
 *
 * The compiled file lives in the user's cache directory (owner-only), keyed by a hash of every
 * file it was built from (our sources, the packages' files, the lockfile) and the Node version.
 * bin/mechanic.js loads it only when that hash still matches and the files are the user's own
 * and writable by nobody else; otherwise it runs the sources through tsx, and the cache is
 * rebuilt for the next start (the TUI in the background once its screen is up, lint after it
 * has printed its answer). The two sides share the recipe below; the integration tests pin that
 * a build made here is what the next start runs.
 */
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { chmod, mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';

/**
 * Bumped when the manifest's meaning or the build's options change: older caches are then stale.
 * 2: each module's import.meta.url is the URL of its source file (see keepModuleUrls).
 */
export const CACHE_FORMAT = 2;

/** The checkout this code runs from (the cache is per checkout: two checkouts do not share one). */
export const ROOT = realpathSync(fileURLToPath(new URL('../../', import.meta.url)));

/** What is compiled, each from its own entry (a module exporting `main(argv): Promise<number>`). */
export type CacheKind = 'tui' | 'lint';
const ENTRIES: Readonly<Record<CacheKind, string>> = {
  tui: path.join(ROOT, 'cli', 'tui', 'main.ts'),
  lint: path.join(ROOT, 'cli', 'commands', 'runbook-lint-main.ts'),
};

/** `MECHANIC_TUI_CACHE=off` / `MECHANIC_LINT_CACHE=off`: always run that command from the sources. */
export function cacheOff(kind: CacheKind, env: NodeJS.ProcessEnv = process.env): boolean {
  return env[`MECHANIC_${kind.toUpperCase()}_CACHE`] === 'off';
}

export interface Manifest {
  readonly format: number;
  readonly node: string;
  /** Every file the bundle was built from, relative to ROOT, sorted; the lockfile too. */
  readonly inputs: readonly string[];
  readonly digest: string;
  /** The bundle's file name, inside the cache directory. */
  readonly bundle: string;
}

/** `$XDG_CACHE_HOME/mechanic/<kind>/<checkout>` (else `~/.cache/…`); bin/mechanic.js computes the same. */
export function cacheDir(kind: CacheKind, env: NodeJS.ProcessEnv = process.env, root: string = ROOT): string {
  const xdg = env['XDG_CACHE_HOME'];
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(env['HOME'] ?? os.homedir(), '.cache');
  const checkout = createHash('sha256').update(root).digest('hex').slice(0, 16);
  return path.join(base, 'mechanic', kind, checkout);
}

/** The compiled TUI's directory: `cacheDir('tui')`. */
export function tuiCacheDir(env: NodeJS.ProcessEnv = process.env, root: string = ROOT): string {
  return cacheDir('tui', env, root);
}

/**
 * The hash the cache is keyed by: the kind and format, the Node version, then each input's path
 * and content. A file that is gone makes this throw (the cache is then stale).
 */
export function inputsDigest(
  root: string,
  inputs: readonly string[],
  node: string = process.version,
  kind: CacheKind = 'tui',
): string {
  const h = createHash('sha256').update(`mechanic-${kind}/${CACHE_FORMAT}\n${node}\n`);
  for (const rel of inputs) {
    h.update(`${rel}\n`);
    h.update(readFileSync(path.join(root, rel)));
    h.update('\n');
  }
  return h.digest('hex');
}

/** Builds the compiled TUI: `buildCache('tui', dir)`. */
export function buildTuiCache(dir: string = tuiCacheDir()): Promise<Manifest> {
  return buildCache('tui', dir);
}

/**
 * Builds one command into `dir` with esbuild (installed with tsx) and writes its manifest last, so
 * a reader never sees a manifest naming a half-written bundle. Safe to run from two processes at once.
 */
export async function buildCache(kind: CacheKind, dir: string = cacheDir(kind)): Promise<Manifest> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [ENTRIES[kind]],
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
    // A compiled command never rebuilds itself (only one run from sources does): no esbuild inside.
    external: ['esbuild'],
    define: {
      'process.env.NODE_ENV': '"production"',
      __MECHANIC_TUI_COMPILED__: 'true',
      // Each module's own source URL (keepModuleUrls declares it); strings and comments are left alone.
      'import.meta.url': MODULE_URL,
    },
    // CommonJS packages inside an ES module still call require() for Node's own modules.
    banner: {
      js: "import { createRequire as __mechanicRequire } from 'node:module'; const require = __mechanicRequire(import.meta.url);",
    },
    plugins: [
      keepModuleUrls(),
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
  if (!code) throw new Error(`esbuild produced no output for ${kind}`);
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
  const digest = inputsDigest(ROOT, inputs, process.version, kind);
  const manifest: Manifest = {
    format: CACHE_FORMAT,
    node: process.version,
    inputs,
    digest,
    bundle: `${kind}-${digest.slice(0, 16)}.mjs`,
  };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await writeAtomically(path.join(dir, manifest.bundle), code);
  await writeAtomically(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest)}\n`);
  // Older bundles of this checkout are never loaded again.
  for (const name of await readdir(dir)) {
    if (new RegExp(`^${kind}-[0-9a-f]{16}\\.mjs$`).test(name) && name !== manifest.bundle)
      await rm(path.join(dir, name), { force: true });
  }
  await rm(path.join(dir, 'build-error.txt'), { force: true });
  return manifest;
}

/**
 * Rebuilds a cache for the next start, never failing: a failure only means the next start is slow
 * again, and its reason is kept beside the cache (the screen and the output belong to the command).
 */
export async function refreshCache(kind: CacheKind, dir: string = cacheDir(kind)): Promise<void> {
  try {
    await buildCache(kind, dir);
  } catch (e) {
    await writeFile(path.join(dir, 'build-error.txt'), `${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`, {
      mode: 0o600,
    }).catch(() => undefined);
  }
}

/** Rebuilds the cache in the background of a TUI started from sources (see refreshCache). */
export function refreshTuiCacheLater(delayMs: number, dir: string = tuiCacheDir()): () => void {
  const timer = setTimeout(() => void refreshCache('tui', dir), delayMs);
  // Quitting the TUI does not wait for a build that has not begun.
  timer.unref();
  return () => clearTimeout(timer);
}

/** The name each bundled module that reads `import.meta.url` declares it under (see keepModuleUrls). */
const MODULE_URL = '__mechanicModuleUrl';

/**
 * Gives every bundled module that reads `import.meta.url` the URL of its own source file, as it
 * has when run from the sources: a module that finds files beside it (web-tree-sitter its .wasm,
 * the shell parser tree-sitter-bash's grammar through createRequire) would otherwise look for them
 * next to the bundle in the cache directory. The build's `define` turns each `import.meta.url`
 * in code into MODULE_URL, and this declares it at the top of the module with the module's URL.
 * The URL names this checkout, whose hash names the cache directory, so a bundle is never used
 * from another checkout.
 */
function keepModuleUrls(): Plugin {
  // Spelled in parts: the check below must not match this file for its own sake.
  const META_URL = ['import', 'meta', 'url'].join('.');
  return {
    name: 'keep-module-urls',
    setup(build) {
      build.onLoad({ filter: /\.(?:[cm]?js|ts|tsx)$/ }, async (args) => {
        const source = await readFile(args.path, 'utf8');
        if (!source.includes(META_URL)) return undefined;
        const ext = path.extname(args.path);
        const declare = `var ${MODULE_URL} = ${JSON.stringify(pathToFileURL(args.path).href)};\n`;
        // A hashbang must stay the first line.
        const hashbang = source.startsWith('#!') ? source.slice(0, source.indexOf('\n') + 1) : '';
        return {
          contents: `${hashbang}${declare}${source.slice(hashbang.length)}`,
          loader: ext === '.ts' ? 'ts' : ext === '.tsx' ? 'tsx' : 'js',
          resolveDir: path.dirname(args.path),
        };
      });
    },
  };
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
