#!/usr/bin/env node
// mechanic runs its TypeScript sources directly through tsx's loader: one source of truth,
// no build step between an edit and the command that runs it. The exceptions are the commands a
// person waits for (see compiled below): the TUI's first frame, and `runbook lint`, which
// pre-commit hooks run on every commit.
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';

// The AWS SDK is pinned to a release that supports Node 20 (see package.json); its warning that
// later releases will not would otherwise interleave with every command's one-line errors.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// Everything mechanic writes (keys, tokens, the audit log, Temporal's database, logs) is for its owner only; the
// parts and the Temporal server inherit this from the process that starts them.
process.umask(0o077);

/** Must equal CACHE_FORMAT in cli/tui/bundle-cache.ts, which writes what this reads. */
const CACHE_FORMAT = 2;

/**
 * The compiled command this command line runs, with the arguments its `main` takes (as
 * cli/main.ts routes them), else undefined: the TUI, or `runbook lint` / `runbook schema`.
 * @param {string[]} argv
 * @returns {{ kind: 'tui' | 'lint'; args: string[] } | undefined}
 */
function compiledCommand(argv) {
  if (argv[0] === 'tui') return { kind: 'tui', args: argv.slice(1) };
  if (argv[0] === 'runbook' && (argv[1] === 'lint' || argv[1] === 'schema'))
    return { kind: 'lint', args: argv.slice(1) };
  const noCommand = argv.length === 0 || argv[0] === '--as' || argv[0]?.startsWith('--as=') === true;
  return noCommand && process.stdout.isTTY && process.stdin.isTTY ? { kind: 'tui', args: argv } : undefined;
}

/**
 * A file or directory this user owns and nobody else may write: the only kind code is loaded from.
 * @param {string} file
 */
function ownedOnly(file) {
  const s = statSync(file);
  return (process.getuid === undefined || s.uid === process.getuid()) && (s.mode & 0o022) === 0;
}

/** `MECHANIC_TUI_CACHE=off` / `MECHANIC_LINT_CACHE=off` run that command from the sources always. */
const cacheOff = (/** @type {'tui' | 'lint'} */ kind) => process.env[`MECHANIC_${kind.toUpperCase()}_CACHE`] === 'off';

/**
 * A compiled command (cli/tui/bundle-cache.ts), when its cache is fresh: built from exactly the
 * files it was built from (same content hash, same Node) and owned by this user alone. Anything
 * else, including any error while checking, means "run from sources", which rebuild it.
 * @param {'tui' | 'lint'} kind
 * @returns {Promise<{ main(argv: string[]): Promise<number> } | undefined>}
 */
async function compiled(kind) {
  if (cacheOff(kind)) return undefined;
  try {
    const root = realpathSync(fileURLToPath(new URL('../', import.meta.url)));
    const xdg = process.env.XDG_CACHE_HOME;
    const base =
      xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(process.env.HOME ?? os.homedir(), '.cache');
    const dir = path.join(base, 'mechanic', kind, createHash('sha256').update(root).digest('hex').slice(0, 16));
    const manifestFile = path.join(dir, 'manifest.json');
    if (!ownedOnly(dir) || !ownedOnly(manifestFile)) return undefined;
    /** @type {{ format?: unknown; node?: unknown; inputs?: unknown; digest?: unknown; bundle?: unknown }} */
    const manifest = /** @type {unknown} */ (JSON.parse(readFileSync(manifestFile, 'utf8'))) ?? {};
    if (manifest.format !== CACHE_FORMAT || manifest.node !== process.version) return undefined;
    const name = new RegExp(`^${kind}-[0-9a-f]{16}\\.mjs$`);
    if (typeof manifest.bundle !== 'string' || !name.test(manifest.bundle)) return undefined;
    const h = createHash('sha256').update(`mechanic-${kind}/${CACHE_FORMAT}\n${process.version}\n`);
    if (!Array.isArray(manifest.inputs)) return undefined;
    for (const rel of /** @type {unknown[]} */ (manifest.inputs)) {
      if (typeof rel !== 'string') return undefined;
      h.update(`${rel}\n`);
      h.update(readFileSync(`${root}${path.sep}${rel}`));
      h.update('\n');
    }
    if (h.digest('hex') !== manifest.digest) return undefined;
    const bundle = path.join(dir, manifest.bundle);
    if (!ownedOnly(bundle)) return undefined;
    /** @type {unknown} */
    const compiled = await import(pathToFileURL(bundle).href);
    return /** @type {{ main(argv: string[]): Promise<number> }} */ (compiled);
  } catch {
    // No cache yet, a file gone, a half-copied cache: the sources are always there to run.
    return undefined;
  }
}

const command = compiledCommand(process.argv.slice(2));
// Lint parses every script with tree-sitter's WebAssembly build, for well under a second. V8's
// optimising tier would recompile that wasm in the background for longer than the whole run (it
// doubled the command's time), so a short-lived lint keeps the baseline compiler's code.
if (command?.kind === 'lint') v8.setFlagsFromString('--liftoff-only');
const fast = command && (await compiled(command.kind));
if (command && fast) {
  process.exitCode = await fast.main(command.args);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
  // Lint ran from its sources: its answer is out; compile it now, so the next run (the next
  // commit's hook) starts fast. The TUI rebuilds its own in the background once its screen is up.
  if (command?.kind === 'lint' && !cacheOff('lint')) {
    const { refreshCache } = /** @type {typeof import('../cli/tui/bundle-cache.ts')} */ (
      await import('../cli/tui/bundle-cache.ts')
    );
    await refreshCache('lint');
  }
}
