import { reportFailure } from './output.ts';
import { UserError } from '../src/core/errors.ts';

type Command = (argv: string[]) => Promise<number | void>;

// Each command is loaded only when used: the worker's Temporal native module costs a second
// at start-up, which the plain API commands should not pay.
const COMMANDS: Record<string, () => Promise<{ run: Command }>> = {
  dev: () => import('./commands/dev.ts'),
  demo: () => import('./commands/demo.ts'),
  launch: () => import('./commands/launch.ts'),
  approve: () => import('./commands/vote.ts').then((m) => ({ run: m.approve })),
  reject: () => import('./commands/vote.ts').then((m) => ({ run: m.reject })),
  cancel: () => import('./commands/cancel.ts'),
  status: () => import('./commands/status.ts'),
  list: () => import('./commands/list.ts'),
  runbooks: () => import('./commands/runbooks.ts'),
  audit: () => import('./commands/audit.ts'),
  worker: () => import('./commands/worker.ts'),
  server: () => import('./commands/server.ts'),
  devfleet: () => import('./commands/devfleet.ts'),
  idp: () => import('./commands/idp.ts'),
  'temporal-cli': () => import('./commands/temporal-cli.ts'),
  bundle: () => import('./commands/bundle.ts'),
  tui: () => import('./commands/tui.ts'),
  policy: () => import('./commands/policy.ts'),
  slack: () => import('./commands/slack.ts'),
  runbook: () => import('./commands/runbook.ts'),
  plan: () => import('./commands/plan.ts'),
  login: () => import('./commands/login.ts'),
  logout: () => import('./commands/login.ts').then((m) => ({ run: m.logout })),
  whoami: () => import('./commands/login.ts').then((m) => ({ run: m.whoami })),
};

const HELP = `mechanic — run reviewed runbooks on your fleet, approved in chat, recorded for auditors.

  mechanic tui [--as <user>]         the TUI (catalog, launch, live runs, approvals); plain "mechanic"
                                     in a terminal opens it too
  mechanic help                      this text

Embedded stack
  mechanic dev [--no-tui]            start Temporal, devfleet, worker and API server; Ctrl-C stops them
  mechanic demo                      play the whole story once, on its own throwaway stack

Operate (talk to the API; --as <user> picks a demo user of the embedded stack)
  mechanic runbooks                              list the runbooks you can launch
  mechanic launch <runbook> --param k=v --reason "why" [--target id] [--dry-run]
  mechanic plan <runbook> --param k=v [--target id]   exactly what a launch would run, and its digest;
                                                 starts nothing
  mechanic approve <execution> [--comment text] [--yes | --digest <prefix>]   shows the plan, then asks
  mechanic reject <execution> --comment "why" [--yes | --digest <prefix>]
  mechanic cancel <execution> --reason "why"     stop it, waiting or running
  mechanic status <execution> [--wait]          --wait follows the run's live events to its end
  mechanic list [--status running]

The record auditors read (the audit log)
  mechanic audit list [--execution id]          the records, newest first
  mechanic audit show <execution>               one run's timeline
  mechanic audit verify [--all-signatures]      check the hash chain, the index and the newest signed checkpoint (every one with --all-signatures)
  mechanic audit key                            the public key that verifies checkpoints and packs
  mechanic audit export --format jsonl|csv|ocsf|parquet [--since] [--until] [--execution id] [--out file]
  mechanic audit report [--since] [--until]     what to automate or fix next, and the runs to look at
  mechanic audit pack <execution> --out <file>  one run's evidence pack, checkable offline
  mechanic audit verify-pack <file> [--key <public key file>]   check a pack with only the public key

Author runbooks (offline)
  mechanic runbook lint <file-or-folder>… [--json]   every problem as file:line:column, sentence and rule
  mechanic runbook schema [--out file]               the runbook JSON Schema, for editors

Publish and review runbooks (the registry; only approved versions can be launched)
  mechanic runbook publish <file-or-folder>…         register name@version with its digest, author and
                                                     source (the git commit when in a repository)
  mechanic runbook review <name>@<version> --approve|--reject --comment "what you checked"
                                                     another author's review; nobody reviews their own
  mechanic runbook list [<name>]                     every version: status, author, reviewers, last run
  mechanic runbook diff <name> <v1> <v2>             what changed between two published versions
  mechanic runbook deprecate <name>@<version> --reason "why"   it can no longer be launched

Run the parts separately (production)
  mechanic worker | mechanic server | mechanic devfleet
  mechanic idp                       the embedded stack's development sign-in provider (mechanic dev starts it)
  mechanic temporal-cli              find or build the Temporal CLI and print its path
  mechanic bundle [--out file]       pre-build the workflow code for production workers

Sign in (OIDC; MECHANIC_OIDC_ISSUER or --issuer names the identity provider)
  mechanic login [--issuer url]      sign in with a code in the browser (device flow); tokens stay owner-only
  mechanic whoami | mechanic logout  who you are signed in as; sign out and revoke the refresh token

Policies (Cedar)
  mechanic policy validate [file]    check a policy file against mechanic's schema
  mechanic policy test <cases.yaml> [--policies file]   run a table of decisions against the policies

Slack (approvals in chat; slack/manifest.yaml sets up the app)
  mechanic slack check [--json]      confirm the bot token, its scopes, the Slack users file and the channels

Every operate command takes --json for scripts.`;

async function main(argv: string[]): Promise<number> {
  // No command in a terminal opens the TUI (`mechanic --as alice` too); anywhere else, the help.
  const noCommand = argv.length === 0 || argv[0] === '--as' || argv[0]?.startsWith('--as=') === true;
  const terminal = process.stdout.isTTY && process.stdin.isTTY;
  const [name, ...rest] = noCommand && terminal ? ['tui', ...argv] : argv;
  const json = rest.includes('--json');
  if (name === undefined || (noCommand && !terminal) || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const load = COMMANDS[name];
  try {
    if (!load) throw new UserError('USAGE', `"${name}" is not a mechanic command; "mechanic help" lists them`);
    const { run } = await load();
    return (await run(rest)) ?? 0;
  } catch (e) {
    return reportFailure(e, json);
  }
}

process.exitCode = await main(process.argv.slice(2));
