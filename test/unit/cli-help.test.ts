/**
 * `mechanic help` and `mechanic audit`'s usage name every audit subcommand, so a reader finds
 * the evidence pack and its offline check without reading the README.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const BIN = fileURLToPath(new URL('../../bin/mechanic.js', import.meta.url));
const SUBCOMMANDS = ['list', 'show', 'verify', 'key', 'export', 'report', 'pack', 'verify-pack'];

function mechanic(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Piped stdout: no terminal, so a bare `mechanic` would print the help rather than open the TUI.
    execFile(process.execPath, [BIN, ...args], { timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('the audit commands in the help', () => {
  test('mechanic help names every audit subcommand', async () => {
    const { code, stdout } = await mechanic(['help']);
    expect(code).toBe(0);
    for (const sub of SUBCOMMANDS) expect(stdout).toMatch(new RegExp(`^ {2}mechanic audit ${sub}( |$)`, 'm'));
  }, 150_000);

  test('mechanic audit without a subcommand says its usage, naming every subcommand, and fails', async () => {
    const { code, stdout, stderr } = await mechanic(['audit']);
    expect(code).not.toBe(0);
    expect(stdout).toBe('');
    for (const sub of SUBCOMMANDS) expect(stderr).toContain(`mechanic audit ${sub} `);
    expect(stderr).not.toMatch(/\n\s+at /);
  }, 150_000);
});
