/**
 * What the mutation driver (driver.ts) gives a test file in place of `vitest`: `describe`, `test`
 * and `it` (with `.each`, `.skip`, `.only`, `.todo`), the four hooks, and vitest's own `expect`
 * and `vi`. Tests are only collected here; the driver runs them, one at a time, in its process.
 * What needs vitest's runner (inline snapshots, `expect.poll`, fixtures) fails in the driver's
 * first run, and the driver then leaves that test out and says so.
 */
import { expect, vi } from 'vitest';

export { expect, vi };

type Fn = (...args: never[]) => unknown;
type Hook = () => unknown;

export interface CollectedTest {
  readonly id: string;
  readonly file: string;
  readonly name: string;
  readonly fn: Fn;
  readonly args: readonly unknown[];
  readonly timeoutMs: number;
  /** The scopes from the file's root to the test's describe, for the hooks. */
  readonly scopes: readonly Scope[];
}

export interface Scope {
  readonly beforeAll: Hook[];
  readonly afterAll: Hook[];
  readonly beforeEach: Hook[];
  readonly afterEach: Hook[];
  ran: boolean;
}

const tests: CollectedTest[] = [];
let file = '';
let stack: { name: string; scope: Scope }[] = [];

const newScope = (): Scope => ({ beforeAll: [], afterAll: [], beforeEach: [], afterEach: [], ran: false });

/** Starts collecting the tests of one file. */
export function collectFile(name: string): void {
  file = name;
  stack = [{ name: '', scope: newScope() }];
}

export function collectedTests(): readonly CollectedTest[] {
  return tests;
}

/** The arguments of `test(name, fn, timeout)`, `test(name, options, fn)` and `test(name, fn, options)`. */
function split(a: unknown, b: unknown): { fn: Fn | undefined; timeoutMs: number } {
  const fn = (typeof a === 'function' ? a : typeof b === 'function' ? b : undefined) as Fn | undefined;
  const opts = typeof a === 'function' ? b : a;
  const timeoutMs =
    typeof opts === 'number'
      ? opts
      : opts && typeof opts === 'object' && typeof (opts as { timeout?: unknown }).timeout === 'number'
        ? (opts as { timeout: number }).timeout
        : 60_000;
  return { fn, timeoutMs };
}

function fullName(name: string): string {
  return [...stack.map((s) => s.name), name].filter((n) => n !== '').join(' › ');
}

function addTest(name: string, a: unknown, b: unknown, args: readonly unknown[] = []): void {
  const { fn, timeoutMs } = split(a, b);
  if (!fn) return;
  tests.push({
    id: `${file} › ${fullName(name)}#${tests.length}`,
    file,
    name: fullName(name),
    fn,
    args,
    timeoutMs,
    scopes: stack.map((s) => s.scope),
  });
}

function addDescribe(name: string, a: unknown, b: unknown): void {
  const { fn } = split(a, b);
  if (!fn) return;
  stack.push({ name, scope: newScope() });
  try {
    fn();
  } finally {
    stack.pop();
  }
}

/** vitest's `%s`, `%d`, `%i`, `%j`, `%o`, `%%` and `$name` in a test's name. */
function format(name: string, row: unknown): string {
  const args: unknown[] = Array.isArray(row) ? [...row] : [row];
  let out = name.replace(/%[sdijo%]/g, (f) => {
    if (f === '%%') return '%';
    const v = args.shift();
    return f === '%j' || f === '%o' ? JSON.stringify(v) : String(v);
  });
  if (row && typeof row === 'object' && !Array.isArray(row)) {
    out = out.replace(/\$(\w+)/g, (m, k: string) => (k in row ? String((row as Record<string, unknown>)[k]) : m));
  }
  return out;
}

function each(add: (name: string, a: unknown, b: unknown, args: readonly unknown[]) => void) {
  return (rows: readonly unknown[]) =>
    (name: string, a: unknown, b?: unknown): void => {
      for (const row of rows) add(format(name, row), a, b, Array.isArray(row) ? row : [row]);
    };
}

const skipped = (): void => undefined;
const testEach = each((name, a, b, args) => addTest(name, a, b, args));
const describeEach = each((name, a, b, args) => {
  const { fn } = split(a, b);
  if (fn) addDescribe(name, () => (fn as (...x: unknown[]) => unknown)(...args), undefined);
});

export const test = Object.assign((name: string, a?: unknown, b?: unknown) => addTest(name, a, b), {
  each: testEach,
  only: (name: string, a?: unknown, b?: unknown) => addTest(name, a, b),
  skip: Object.assign(skipped, { each: () => skipped }),
  todo: skipped,
});
export const it = test;
export const describe = Object.assign((name: string, a?: unknown, b?: unknown) => addDescribe(name, a, b), {
  each: describeEach,
  only: (name: string, a?: unknown, b?: unknown) => addDescribe(name, a, b),
  skip: Object.assign(skipped, { each: () => skipped }),
  todo: skipped,
});

const hook = (kind: keyof Omit<Scope, 'ran'>) => (fn: Hook) => {
  stack.at(-1)?.scope[kind].push(fn);
};
export const beforeAll = hook('beforeAll');
export const afterAll = hook('afterAll');
export const beforeEach = hook('beforeEach');
export const afterEach = hook('afterEach');
