/**
 * Module hooks for the mutation driver (driver.ts): the file under test loads as Stryker
 * instrumented it (every mutant behind a switch), and `vitest` in a test file loads the driver's
 * small stand-in, so that test files run in the driver's own process.
 */
interface HookData {
  /** URL of the file under test. */
  readonly target: string;
  /** Its instrumented code, already compiled to JavaScript. */
  readonly code: string;
  /** URL of the stand-in for `vitest`. */
  readonly shim: string;
}

interface ResolveContext {
  readonly parentURL?: string;
}
type NextResolve = (specifier: string, context: ResolveContext) => Promise<unknown>;
type NextLoad = (url: string, context: unknown) => Promise<unknown>;

let data: HookData | undefined;

export function initialize(given: HookData): void {
  data = given;
}

export async function resolve(specifier: string, context: ResolveContext, next: NextResolve): Promise<unknown> {
  // The stand-in itself imports the real vitest (for its `expect`).
  if (data && specifier === 'vitest' && context.parentURL !== data.shim) return { url: data.shim, shortCircuit: true };
  return next(specifier, context);
}

export async function load(url: string, context: unknown, next: NextLoad): Promise<unknown> {
  if (data && url === data.target) return { format: 'module', source: data.code, shortCircuit: true };
  return next(url, context);
}
