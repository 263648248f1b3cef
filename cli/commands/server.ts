import { parse } from '../args.ts';

/** `mechanic server`: the HTTP API (src/server/main.ts), until SIGINT/SIGTERM. */
export async function run(argv: string[]): Promise<number> {
  parse(argv, {}, 'mechanic server');
  const { runServer } = await import('../../src/server/main.ts');
  return runServer();
}
