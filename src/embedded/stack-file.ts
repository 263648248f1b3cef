import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** What a running embedded stack tells the CLI in a second terminal: where each part answers. */
export interface StackInfo {
  readonly apiUrl: string;
  readonly temporalAddress: string;
  readonly temporalUiUrl?: string | undefined;
  readonly devfleetEndpoint: string;
  /** The development sign-in provider's issuer URL, where `--as` gets its tokens. */
  readonly idpIssuer?: string | undefined;
  readonly pid: number;
}

export const stackFile = (home: string) => path.join(home, 'stack.json');

export async function readStack(home: string): Promise<StackInfo | undefined> {
  try {
    return JSON.parse(await readFile(stackFile(home), 'utf8')) as StackInfo;
  } catch {
    return undefined;
  }
}
