/**
 * The real `mechanic` in a pseudo-terminal, its output fed to a headless xterm, so a test reads
 * the screen a person would see (not the byte stream) and types into it.
 */
import * as pty from 'node-pty';
import xterm from '@xterm/headless';
import { BIN } from './cli.ts';

const { Terminal } = xterm;

export interface TuiSession {
  /** The visible screen, one string per row, trailing spaces trimmed. */
  screen(): string;
  /** Whether the terminal is on its alternate screen (full-screen apps) or back on the normal one. */
  bufferType(): 'normal' | 'alternate';
  write(keys: string): void;
  /** Types `text` one character at a time, as a person would. */
  type(text: string): Promise<void>;
  waitFor(match: string | RegExp | ((screen: string) => boolean), what?: string, timeoutMs?: number): Promise<string>;
  /**
   * Presses `keys` once and waits for `match`. Never presses again: the TUI hands every key to the
   * screen in front, waiting for a screen that is still mounting, so a key that gets lost is a
   * fault this must show, not paper over.
   */
  press(keys: string, match: string | RegExp, what: string): Promise<string>;
  resize(cols: number, rows: number): void;
  readonly exited: Promise<{ exitCode: number; signal?: number }>;
  /** Kills the child if it is still running and waits for it; idempotent. */
  stop(): Promise<void>;
  /** Resolves once every byte written so far has been parsed by the terminal. */
  flush(): Promise<void>;
}

export function spawnTui(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  size: { cols: number; rows: number } = { cols: 100, rows: 30 },
): TuiSession {
  const term = new Terminal({ cols: size.cols, rows: size.rows, allowProposedApi: true });
  const child = pty.spawn(process.execPath, [BIN, ...args], {
    name: 'xterm-256color',
    cols: size.cols,
    rows: size.rows,
    cwd: process.cwd(),
    env: { ...env, TERM: 'xterm-256color' },
  });
  let pending = Promise.resolve();
  let chunks = 0;
  child.onData((d) => {
    chunks++;
    pending = new Promise((resolve) => term.write(d, resolve));
  });
  let done = false;
  const exited = new Promise<{ exitCode: number; signal?: number }>((resolve) =>
    child.onExit((e) => {
      done = true;
      resolve(e);
    }),
  );
  const screen = () => {
    const buf = term.buffer.active;
    const lines: string[] = [];
    for (let y = 0; y < term.rows; y++) lines.push(buf.getLine(buf.viewportY + y)?.translateToString(true) ?? '');
    return lines.join('\n');
  };
  const session: TuiSession = {
    screen,
    bufferType: () => term.buffer.active.type,
    write: (keys) => child.write(keys),
    async type(text) {
      for (const ch of text) {
        child.write(ch);
        await new Promise((r) => setTimeout(r, 15));
      }
    },
    async waitFor(match, what = String(match), timeoutMs = 60_000) {
      const test =
        typeof match === 'function'
          ? match
          : typeof match === 'string'
            ? (s: string) => s.includes(match)
            : (s: string) => match.test(s);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        await pending;
        const seen = chunks;
        const s = screen();
        if (test(s)) {
          // A frame can reach the pty in more than one chunk, and a screen read between them is
          // half drawn (the new header above the old rows' blanks). Answer only with a screen no
          // chunk has followed for a moment; otherwise look again at the one that follows (a screen
          // redrawn without pause until the deadline is taken as it is).
          await new Promise((r) => setTimeout(r, 40));
          if (chunks === seen || Date.now() > deadline) return s;
          continue;
        }
        if (done) throw new Error(`mechanic exited before ${what} appeared; last screen:\n${s}`);
        if (Date.now() > deadline) throw new Error(`${what} did not appear; last screen:\n${s}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async press(keys, match, what) {
      child.write(keys);
      return this.waitFor(match, what);
    },
    resize(cols, rows) {
      child.resize(cols, rows);
      term.resize(cols, rows);
    },
    exited,
    async stop() {
      if (!done) {
        child.kill('SIGKILL');
        await exited;
      }
      term.dispose();
    },
    flush: () => pending,
  };
  return session;
}

export const KEYS = {
  enter: '\r',
  esc: '\u001b',
  down: '\u001b[B',
  up: '\u001b[A',
  right: '\u001b[C',
  ctrlC: '\u0003',
};
