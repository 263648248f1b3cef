/**
 * One way in for keys, so that each key press has exactly one screen that owns it.
 *
 * With ink's own `useInput`, every mounted component hears every key, and which ones are mounted
 * changes only when React gets round to rendering (React 19 renders some time after the key):
 * a key typed right behind another (a fast typist, a paste, a loaded machine) could reach the
 * screen that was just left, act there on old state, or reach no screen at all. Here the app has
 * the only subscription to ink's input, knows at every moment which screen is in front (`front`,
 * read from state updated as keys are handled, not from the last render), and hands each key to
 * that screen alone. A key for a screen that has not mounted yet waits for it, and so do the keys
 * behind it: they are handled in the order typed, none lost, none misdelivered.
 */
import { createContext, useCallback, useContext, useLayoutEffect, useMemo, useRef, type ReactNode } from 'react';
import { useInput, type Key } from 'ink';

export type KeyHandler = (input: string, key: Key) => void;

interface Entry {
  /** The screen this handler belongs to; undefined: the app's own keys, heard on every screen. */
  readonly owner: string | undefined;
  readonly handler: { readonly current: KeyHandler };
}

interface Router {
  add(entry: Entry): () => void;
}

const KeyboardContext = createContext<Router | undefined>(undefined);
const OwnerContext = createContext<string | undefined>(undefined);

/** Marks the screen below it as `owner`: its `useKeys` hear keys only while `owner` is in front. */
export function KeyOwner({ owner, children }: { readonly owner: string; readonly children: ReactNode }) {
  return <OwnerContext.Provider value={owner}>{children}</OwnerContext.Provider>;
}

/**
 * The single subscriber to ink's input. `front()` names the screen in front (undefined: none, e.g.
 * while the help overlay, which the app's own keys handle, is shown).
 */
export function KeyboardProvider({
  front,
  appKeys,
  children,
}: {
  readonly front: () => string | undefined;
  /** The app's own keys (help, tabs, quit): heard first, on every screen. */
  readonly appKeys: KeyHandler;
  readonly children: ReactNode;
}) {
  const entries = useRef(new Set<Entry>());
  const held = useRef<[string, Key][]>([]);
  const frontRef = useRef(front);
  frontRef.current = front;
  const appRef = useRef(appKeys);
  appRef.current = appKeys;

  /** Handles one key; false when the screen in front has not mounted yet (the key must wait). */
  const deliver = useCallback((input: string, key: Key): boolean => {
    const owner = frontRef.current();
    const all = [...entries.current];
    const screen = all.filter((e) => e.owner !== undefined && e.owner === owner);
    if (owner !== undefined && screen.length === 0) return false;
    appRef.current(input, key);
    for (const e of all) if (e.owner === undefined) e.handler.current(input, key);
    // The app's keys may have changed what is in front (a tab, back): the key was theirs then.
    if (frontRef.current() !== owner) return true;
    for (const e of screen) e.handler.current(input, key);
    return true;
  }, []);

  const drain = useCallback(() => {
    while (held.current.length > 0) {
      const [input, key] = held.current[0]!;
      if (!deliver(input, key)) return;
      held.current.shift();
    }
  }, [deliver]);

  const router = useMemo<Router>(
    () => ({
      add(entry) {
        entries.current.add(entry);
        // A screen just mounted: keys that waited for it are handled now, after this commit.
        if (held.current.length > 0) queueMicrotask(drain);
        return () => {
          entries.current.delete(entry);
        };
      },
    }),
    [drain],
  );

  const onInput = useCallback<KeyHandler>(
    (input, key) => {
      held.current.push(...splitKeys(input, key));
      drain();
    },
    [drain],
  );
  useInput(onInput);
  return <KeyboardContext.Provider value={router}>{children}</KeyboardContext.Provider>;
}

/**
 * A component's keys, heard while it is mounted, `isActive` is not false, and its screen (the
 * nearest KeyOwner) is in front. The handler may change every render: the newest one is called,
 * so it should read state that keys change through refs (`useLatest`). Outside a
 * KeyboardProvider (a screen rendered alone) it falls back to ink's `useInput`.
 */
export function useKeys(handler: KeyHandler, options: { readonly isActive?: boolean } = {}): void {
  const router = useContext(KeyboardContext);
  const owner = useContext(OwnerContext);
  const active = options.isActive !== false;
  const latest = useRef(handler);
  latest.current = handler;
  // A layout effect: registered while the frame that shows this screen is committed.
  useLayoutEffect(
    () => (router && active ? router.add({ owner, handler: latest }) : undefined),
    [router, owner, active],
  );
  const stable = useCallback<KeyHandler>((input, key) => {
    for (const [i, k] of splitKeys(input, key)) latest.current(i, k);
  }, []);
  useInput(stable, { isActive: !router && active });
}

const NO_KEY: Key = {
  upArrow: false,
  downArrow: false,
  leftArrow: false,
  rightArrow: false,
  pageDown: false,
  pageUp: false,
  home: false,
  end: false,
  return: false,
  escape: false,
  ctrl: false,
  shift: false,
  tab: false,
  backspace: false,
  delete: false,
  meta: false,
  super: false,
  hyper: false,
  capsLock: false,
  numLock: false,
};

/**
 * One key per call. When keys arrive faster than the process reads them (a loaded machine, a
 * fast typist), ink hands over the whole run of typed characters as one input ("/deploy"), which
 * no screen would recognise as "/" followed by letters: each character becomes its own key again.
 */
export function splitKeys(input: string, key: Key): [string, Key][] {
  const chars = Array.from(input);
  if (chars.length <= 1 || key.ctrl || key.meta || key.escape) return [[input, key]];
  return chars.map((ch): [string, Key] => {
    if (ch === '\r' || ch === '\n') return ['', { ...NO_KEY, return: true }];
    if (ch === '\t') return ['', { ...NO_KEY, tab: true }];
    if (ch === '\u007f' || ch === '\b') return ['', { ...NO_KEY, backspace: true }];
    return [ch, { ...NO_KEY, shift: /^[A-Z]$/.test(ch) }];
  });
}
