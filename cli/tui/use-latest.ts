import { useCallback, useRef, useState } from 'react';

/**
 * State whose newest value key handlers can read at once. ink calls the handler registered at
 * the last render, so keys that arrive faster than the screen re-renders (fast typing, a paste, a
 * key held down) would otherwise each act on the same stale value and some would be lost.
 */
export function useLatest<T>(initial: T | (() => T)): [T, () => T, (next: T | ((prev: T) => T)) => void] {
  const [value, setValue] = useState(initial);
  const ref = useRef(value);
  const get = useCallback(() => ref.current, []);
  const set = useCallback((next: T | ((prev: T) => T)) => {
    ref.current = typeof next === 'function' ? (next as (prev: T) => T)(ref.current) : next;
    setValue(ref.current);
  }, []);
  return [value, get, set];
}
