import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { untilSignal } from '../../src/log.ts';
import { UserError } from '../../src/core/errors.ts';
import { parse } from '../args.ts';
import { out } from '../output.ts';
import { startStack } from '../../src/embedded/stack.ts';

/**
 * `mechanic dev`: the embedded stack, then (in a terminal) the TUI on it; quitting the TUI or
 * Ctrl-C stops every child it started. `--no-tui` keeps it in the foreground until Ctrl-C.
 */
export async function run(argv: string[]): Promise<number> {
  const usage = 'mechanic dev [--no-tui] [--as user]';
  const { values, positionals } = parse(argv, { 'no-tui': { type: 'boolean' }, as: { type: 'string' } }, usage);
  if (positionals.length) throw new UserError('USAGE', `mechanic dev takes no arguments; usage: ${usage}`);
  // In a terminal the TUI opens on the stack; while it is open, the stack's notices go to
  // logs/dev.log instead of over the screen.
  const tui = values['no-tui'] !== true && process.stdout.isTTY && process.stdin.isTTY;
  let notices: ((line: string) => void) | undefined;
  const say = (line: string) => (notices ? notices(line) : out.info(line));
  const config = loadConfig();
  const stopping = untilSignal(false);
  let up = false;
  // A Ctrl-C while starting (the first start may build the Temporal CLI for minutes) must not wait for the start to
  // finish: this process leaves at once, and its children go with it (their pipes close, the watchdog stops them).
  void stopping.then(() => {
    if (up) return;
    out.info('stopped while starting; everything it had started stops with it');
    process.exit(130);
  });
  const stack = await startStack(config, {
    progress: (line) => say(`· ${line}`),
    warn: (line) => say(`! ${line}`),
    partExited: (name, code, signal, delayMs) =>
      say(
        `! ${name} exited${signal || code !== null ? ` (${signal ?? `code ${code}`})` : ''}; restarting it${delayMs >= 1000 ? ` in ${Math.round(delayMs / 1000)} s` : ''}`,
      ),
  });
  up = true;
  if (tui) {
    const log = createWriteStream(path.join(stack.home, 'logs', 'dev.log'), { flags: 'a' });
    notices = (line) => log.write(`${new Date().toISOString()} ${line}\n`);
    try {
      const { openTui } = await import('./tui.ts');
      await openTui(config, { as: values.as, until: stopping });
    } finally {
      notices = undefined;
      log.end();
      out.info('stopping the stack…');
      await stack.stop();
    }
    return 0;
  }
  const { info } = stack;
  out.line(`
mechanic is running.
  API            ${info.apiUrl}
  Temporal       ${info.temporalAddress}${info.temporalUiUrl ? `   Web UI ${info.temporalUiUrl}` : ''}
  devfleet       ${info.devfleetEndpoint}   (web-1, web-2, db-1)
  sign-in        ${info.idpIssuer ?? 'not running'}   (OpenID provider; the demo users' password is in ${path.join(stack.home, 'idp', 'password')})
  state and logs ${stack.home}

Demo users: alice (operator; approves other people's changes), bob and carol (approvers), dave (auditor).
--as <user> signs that user in at the provider and sends its token, verified like any OIDC token.
In another terminal, try:
  npx mechanic runbooks --as alice
  npx mechanic launch deploy-web --param release=v1.4.2 --reason "ship the login fix" --as alice
  npx mechanic approve <execution-id> --as alice     # refused: nobody approves their own change
  npx mechanic approve <execution-id> --as bob
  npx mechanic status <execution-id> --wait --as alice
  npx mechanic audit list --as dave
Or watch the whole story play by itself: npx mechanic demo

Ctrl-C stops everything.`);
  await stopping;
  const started = Date.now();
  await stack.stop();
  out.info(`stopped everything mechanic dev started (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return 0;
}
