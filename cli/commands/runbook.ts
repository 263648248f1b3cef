import { UserError } from '../../src/core/errors.ts';

type Command = (argv: string[]) => Promise<number | void>;

/**
 * `mechanic runbook <subcommand>`: the author's commands. Each subcommand is loaded only when
 * used, so `lint` (run by pre-commit hooks) loads neither the API client nor the store.
 */
const SUBCOMMANDS: Record<string, () => Promise<{ run: Command }>> = {
  lint: () => import('./runbook-lint.ts'),
  schema: () => import('./runbook-lint.ts').then((m) => ({ run: m.schema })),
  publish: () => import('./runbook-registry.ts').then((m) => ({ run: m.publish })),
  review: () => import('./runbook-registry.ts').then((m) => ({ run: m.review })),
  diff: () => import('./runbook-registry.ts').then((m) => ({ run: m.diff })),
  list: () => import('./runbook-registry.ts').then((m) => ({ run: m.list })),
  deprecate: () => import('./runbook-registry.ts').then((m) => ({ run: m.deprecate })),
};

export async function run(argv: string[]): Promise<number | void> {
  const [sub, ...rest] = argv;
  const load = sub === undefined ? undefined : SUBCOMMANDS[sub];
  if (!load) {
    const known = Object.keys(SUBCOMMANDS).join(', ');
    throw new UserError(
      'USAGE',
      sub === undefined
        ? `name a runbook subcommand (${known}); "mechanic help" describes them`
        : `"${sub}" is not a runbook subcommand; the subcommands are ${known}`,
    );
  }
  const { run: runSub } = await load();
  return runSub(rest);
}
