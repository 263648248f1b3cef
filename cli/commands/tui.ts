import type { Instance } from 'ink';
import { loadConfig, type Config } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import { readUsersFile } from '../../src/authz/users.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { COMPILED } from '../tui/build-info.ts';
import type { DemoUser } from '../tui/UserPicker.tsx';

const USAGE = 'mechanic [tui] [--as user]';

/** `mechanic` (no arguments, in a terminal) and `mechanic tui`: the terminal UI. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { as: { type: 'string' } }, USAGE);
  if (positionals.length) throw new UserError('USAGE', `the TUI takes no arguments; usage: ${USAGE}`);
  await openTui(loadConfig(), { as: values.as });
  return 0;
}

export interface TuiOptions {
  /** A demo user of the embedded stack; without it, MECHANIC_TOKEN, else a picker of the demo users. */
  readonly as?: string | undefined;
  /**
   * Closes the TUI when it settles (`mechanic dev` passes its SIGINT/SIGTERM wait, and stops the
   * stack after). Without it, SIGTERM and SIGHUP restore the terminal and end the process.
   */
  readonly until?: Promise<unknown>;
}

/** How long after the first frame a TUI started from sources rebuilds the compiled cache. */
const REFRESH_DELAY_MS = 1_000;

const ENTER_ALT = '\u001b[?1049h';
const LEAVE_ALT = '\u001b[?1049l\u001b[?25h';

/**
 * Opens the TUI on the alternate screen and returns when it is quit (q on the first screen, or
 * Ctrl-C from anywhere). The terminal is restored however it ends: quit, Ctrl-C, a signal, a crash.
 */
export async function openTui(config: Config, options: TuiOptions = {}): Promise<void> {
  if (!process.stdout.isTTY || !process.stdin.isTTY) {
    throw new UserError(
      'USAGE',
      'the mechanic TUI needs a terminal; in scripts use the plain commands ("mechanic help" lists them)',
    );
  }
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    process.stdout.write(LEAVE_ALT);
  };
  const onSignal = () => {
    restore();
    process.exit(130);
  };
  let shown: Instance | undefined;
  let closed = false;
  void options.until?.then(() => {
    closed = true;
    shown?.unmount();
  });
  // The first frame at once, before React and ink are loaded (that takes most of the start-up):
  // the screen is taken and says what is happening.
  process.stdout.write(`${ENTER_ALT}\u001b[2J\u001b[Hmechanic · starting…\r\n`);
  process.once('exit', restore);
  if (!options.until) process.once('SIGTERM', onSignal);
  process.once('SIGHUP', onSignal);
  // ink draws only a final frame when it thinks it runs on a CI server (CI, CI_* variables), which
  // would leave a person at a real terminal looking at "starting…": this is a terminal, so say so
  // before ink reads its environment.
  for (const name of Object.keys(process.env)) {
    if (name === 'CI' || name === 'CONTINUOUS_INTEGRATION' || name.startsWith('CI_')) delete process.env[name];
  }
  try {
    const [{ createElement }, { render }, { App }, { UserPicker }] = await Promise.all([
      import('react'),
      import('ink'),
      import('../tui/App.tsx'),
      import('../tui/UserPicker.tsx'),
    ]);
    let as = options.as;
    if (as === undefined && !config.api.token) {
      const users = await demoUsers(config);
      shown = render(
        createElement(UserPicker, {
          users,
          onPick: (id: string) => {
            as = id;
            shown?.unmount();
          },
        }),
        { exitOnCtrlC: true },
      );
      await shown.waitUntilExit();
      shown.clear();
      if (as === undefined || closed) return;
    }
    const api = await connectApi(config, as, 'tui');
    if (closed) return;
    // Whole frames (not incremental line updates): with full-width lines, line-by-line updates
    // left stale rows in some terminals; ink wraps each frame in synchronized output where supported.
    // 60 frames a second at most: a key press while events stream waits at most ~16 ms for its frame.
    shown = render(createElement(App, { api }), { exitOnCtrlC: true, patchConsole: true, maxFps: 60 });
    // Started from sources: the cache was missing or stale. Rebuild it once the screen is up, so
    // the next start is fast (cli/tui/bundle-cache.ts); the build runs in esbuild's own process.
    const stopRefresh =
      COMPILED || process.env['MECHANIC_TUI_CACHE'] === 'off'
        ? undefined
        : (await import('../tui/bundle-cache.ts')).refreshTuiCacheLater(REFRESH_DELAY_MS);
    await shown.waitUntilExit();
    stopRefresh?.();
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    restore();
  }
}

/** The embedded stack's demo users, to pick one from. */
async function demoUsers(config: Config): Promise<DemoUser[]> {
  try {
    return (await readUsersFile(config.api.usersFile)).users;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new UserError(
      'UNAUTHENTICATED',
      'no credentials: set MECHANIC_TOKEN, or start the embedded stack ("mechanic dev") and pass --as <user>',
    );
  }
}
