// Lint rules: typescript-eslint's strict type-checked set (no-floating-promises matters in socket
// code) plus the import direction of ../shared conventions: proto/ imports nothing of ours, and
// agent/ and control-plane/ never import each other.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const forbid = (patterns, message) => ({
  'no-restricted-imports': ['error', { patterns: patterns.map((group) => ({ group: [group], message })) }],
});

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // Decoders deliberately `return issues.add(...)` (typed `undefined`) to record an error and bail out.
      '@typescript-eslint/no-confusing-void-expression': 'off',
      // node:test's test() and describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
    },
  },
  {
    files: ['proto/**/*.ts'],
    rules: forbid(['**/agent/**', '**/control-plane/**', '**/bin/**'], 'proto/ depends on nothing of ours'),
  },
  {
    // The wire (proto/*.ts) is plain data and decoders; the shared runtime (proto/runtime/) may use it,
    // never the other way round.
    files: ['proto/*.ts'],
    rules: forbid(
      ['**/agent/**', '**/control-plane/**', '**/bin/**', './runtime/**'],
      'proto/ wire files import neither our runtime nor anything outside proto/',
    ),
  },
  {
    files: ['agent/**/*.ts'],
    rules: forbid(['**/control-plane/**', '**/bin/**'], 'agent/ must not import control-plane/'),
  },
  {
    files: ['control-plane/**/*.ts'],
    rules: forbid(['**/agent/**', '**/bin/**'], 'control-plane/ must not import agent/'),
  },
  {
    // The console's browser modules: they run in a page, so they may take only types from the rest of
    // the repository (the contract in proto/console.ts); nothing of ours is loaded at run time.
    files: ['control-plane/console/ui/**/*.ts'],
    rules: {
      // `import { type X }` would still load the module in the browser; `import type` is erased.
      '@typescript-eslint/no-import-type-side-effects': 'error',
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../*', '!../../../proto/console.js'],
              message: 'the console UI imports only its own modules and the types of proto/console.ts',
            },
            { group: ['../../../proto/console.js'], allowTypeImports: true, message: 'type-only imports' },
          ],
        },
      ],
    },
  },
  ...['session', 'data', 'meta'].map((role) => ({
    // The roles are processes of their own: they share only the plumbing below them (link/, admin/).
    files: [`control-plane/${role}/**/*.ts`],
    rules: forbid(
      [
        '**/agent/**',
        '**/bin/**',
        ...['session', 'data', 'meta'].filter((r) => r !== role).map((r) => `../${r}/**`),
      ],
      `control-plane/${role}/ imports no other role's folder`,
    ),
  })),
);
