// @ts-check
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';

const nodeBuiltins = [
  'fs',
  'path',
  'os',
  'child_process',
  'net',
  'http',
  'https',
  'crypto',
  'process',
  'worker_threads',
  'timers',
];
/** Core modules the workflow bundle may load: pure JS, no Node built-ins, no I/O. */
const SANDBOX_SAFE = ['approval.ts', 'audit-events.ts', 'errors.ts', 'execution.ts', 'targets.ts', 'text.ts'];
const SANDBOX_SAFE_NAMES = SANDBOX_SAFE.map((m) => m.replace('.', '\\.')).join('|');
const builtinPatterns = nodeBuiltins.flatMap((m) => [m, `node:${m}`, `${m}/*`, `node:${m}/*`]);

export default tseslint.config(
  { ignores: ['node_modules/**', '.mechanic/**', 'dist/**', 'coverage/**', 'test/replay/histories/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', 'bin/*.js', 'src/temporal/*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { 'import-x': importX },
    settings: { 'import-x/extensions': ['.ts', '.tsx', '.js'] },
    rules: {
      // Modules depend in one direction; a cycle means two of them are really one, or a seam is missing.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/require-await': 'off',
      'no-console': 'error',
    },
  },
  {
    // Workflow code is replayed in Temporal's sandbox: it imports (as values) only the workflow API,
    // zod and the core modules on this sandbox-safe list; anything else may be imported as a type.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^(?!(\\./[\\w-]+\\.ts|\\.\\./src/core/(${SANDBOX_SAFE_NAMES})|\\.\\./src/temporal/search-attributes\\.ts|@temporalio/workflow|zod)$)`,
              allowTypeImports: true,
              message:
                'workflow code imports only @temporalio/workflow, zod, the search-attribute keys and the sandbox-safe core modules',
            },
          ],
        },
      ],
    },
  },
  {
    // The sandbox-safe core modules keep to each other and zod, so the list above stays true.
    files: SANDBOX_SAFE.map((m) => `src/core/${m}`),
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^(?!(\\./(${SANDBOX_SAFE_NAMES})|zod)$)`,
              allowTypeImports: true,
              message: 'a sandbox-safe core module imports only other sandbox-safe modules and zod',
            },
          ],
        },
      ],
    },
  },
  {
    // The core is pure: zod and hashing only, nothing that does I/O.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: builtinPatterns.filter((p) => !p.includes('crypto')), message: 'src/core is pure: no I/O' },
            {
              group: [
                '@aws-sdk/*',
                '@temporalio/*',
                'kysely',
                'better-sqlite3',
                'pg',
                'hono',
                '**/activities/**',
                '**/store/**',
                '**/server/**',
                '**/temporal/**',
                '**/devfleet/**',
                '**/cli/**',
                '**/authz/**',
              ],
              message: 'src/core depends on nothing but zod',
            },
          ],
        },
      ],
    },
  },
  {
    // The command line talks to mechanic only through the API client; the parts it starts
    // (server, worker, devfleet, the embedded stack) are loaded by their entry points, on demand.
    files: ['cli/**/*.ts', 'cli/**/*.tsx'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '**/src/store/**',
                '**/src/activities/**',
                '**/src/server/**',
                '**/src/temporal/**',
                '**/src/devfleet/**',
                '**/workflows/**',
                '@temporalio/*',
                '@aws-sdk/*',
                'kysely',
                'pg',
                'better-sqlite3',
                'hono',
                // The process entry points beside each part are what the CLI starts.
                '!**/src/server/main.ts',
                '!**/src/temporal/worker-main.ts',
                '!**/src/devfleet/main.ts',
              ],
              allowTypeImports: true,
              message:
                'cli/ uses the API client (src/api); other parts are started through their entry points (main.ts)',
            },
          ],
        },
      ],
    },
  },
  {
    // Tests and the CLI's own output module may print; test files may use non-null assertions freely.
    files: ['test/**/*.ts', 'cli/output.ts'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
