/**
 * The one key map: the footer shows the keys of the screen in front, the help overlay shows them
 * all, both from this table, so what is shown is what works.
 */
export type ScreenName = 'catalog' | 'runs' | 'inbox' | 'form' | 'plan' | 'run' | 'output' | 'dialog' | 'picker';

export interface KeyHint {
  readonly keys: string;
  readonly does: string;
}

const NAV: KeyHint = { keys: '↑↓/jk', does: 'move' };
const TABS: KeyHint = { keys: '1-3/Tab', does: 'tabs' };
const HELP: KeyHint = { keys: '?', does: 'help' };

export const KEYMAP: Record<ScreenName, readonly KeyHint[]> = {
  catalog: [
    NAV,
    { keys: 'Enter', does: 'launch' },
    { keys: '/', does: 'filter' },
    TABS,
    HELP,
    { keys: 'q', does: 'quit' },
  ],
  runs: [NAV, { keys: 'Enter', does: 'open' }, TABS, HELP, { keys: 'q', does: 'quit' }],
  inbox: [NAV, { keys: 'Enter', does: 'open to vote' }, TABS, HELP, { keys: 'q', does: 'quit' }],
  form: [
    { keys: '↑↓/Tab', does: 'field' },
    { keys: '←→/Space', does: 'choose' },
    { keys: 'Enter', does: 'next / review plan' },
    { keys: 'Esc', does: 'back' },
  ],
  plan: [
    { keys: '↑↓ PgUp PgDn', does: 'scroll' },
    { keys: 'Enter', does: 'submit' },
    HELP,
    { keys: 'q/Esc', does: 'back' },
  ],
  run: [
    NAV,
    { keys: 'Enter', does: 'output' },
    { keys: 'p', does: 'plan' },
    { keys: 'a/x', does: 'vote' },
    { keys: 'c', does: 'cancel' },
    HELP,
    { keys: 'q/Esc', does: 'back' },
  ],
  output: [
    { keys: '↑↓ PgUp PgDn', does: 'scroll' },
    { keys: 'g/G', does: 'top/end' },
    { keys: 'q/Esc', does: 'close' },
  ],
  dialog: [
    { keys: 'Enter', does: 'confirm' },
    { keys: 'Esc', does: 'cancel' },
  ],
  picker: [NAV, { keys: 'Enter', does: 'sign in' }, { keys: 'q', does: 'quit' }],
};

export const SCREEN_TITLES: Record<ScreenName, string> = {
  catalog: 'Catalog',
  runs: 'My runs',
  inbox: 'Inbox',
  form: 'Launch form',
  plan: 'Plan review',
  run: 'Run',
  output: 'Output',
  dialog: 'Dialogs',
  picker: 'Sign in',
};

export const GLOBAL_KEYS: readonly KeyHint[] = [
  { keys: '?', does: 'this help (not while typing in a field)' },
  { keys: 'q / Esc', does: 'back out; q on the first screen quits' },
  { keys: 'Ctrl-C', does: 'quit from anywhere; the terminal is restored' },
];
