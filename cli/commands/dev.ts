import { loadConfig } from '../../src/config.ts';
import { untilSignal } from '../../src/log.ts';
import { UserError } from '../../src/core/errors.ts';
import { parse } from '../args.ts';
import { out } from '../output.ts';
import { startStack } from '../../src/embedded/stack.ts';

/**
 * `mechanic dev`: the embedded stack in the foreground until Ctrl-C, which stops every child it
 * started. The TUI is not built yet, so --no-tui is what it always does for now.
 */
export async function run(argv: string[]): Promise<number> {
  const { positionals } = parse(argv, { 'no-tui': { type: 'boolean' } }, 'mechanic dev [--no-tui]');
  if (positionals.length)
    throw new UserError('USAGE', 'mechanic dev takes no arguments; usage: mechanic dev [--no-tui]');
  const config = loadConfig();
  const stopping = untilSignal(false);
  const stack = await startStack(config, {
    progress: (line) => out.info(`· ${line}`),
    warn: (line) => out.info(`! ${line}`),
    partExited: (name, code, signal, delayMs) =>
      out.info(
        `! ${name} exited${signal || code !== null ? ` (${signal ?? `code ${code}`})` : ''}; restarting it${delayMs >= 1000 ? ` in ${Math.round(delayMs / 1000)} s` : ''}`,
      ),
  });
  const { info } = stack;
  out.line(`
mechanic is running.
  API            ${info.apiUrl}
  Temporal       ${info.temporalAddress}${info.temporalUiUrl ? `   Web UI ${info.temporalUiUrl}` : ''}
  devfleet       ${info.devfleetEndpoint}   (web-1, web-2, db-1)
  state and logs ${stack.home}

Demo users: alice (operator; approves other people's changes), bob and carol (approvers), dave (auditor).
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
