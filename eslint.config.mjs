// ESLint for every package (`npm run lint` at the root): typescript-eslint's
// recommended rules with type information, and Vitest's rules for the tests. Formatting
// is Prettier's job (`.prettierrc.json`), so no rule here is about layout.
import comments from '@eslint-community/eslint-plugin-eslint-comments/configs';
import js from '@eslint/js';
import vitest from '@vitest/eslint-plugin';
import prettier from 'eslint-config-prettier';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['**/node_modules/', '**/dist/', '**/.cache/', 'compose/rendered/', 'wiki-chart/'],
  },
  js.configs.recommended,
  comments.recommended,
  {
    // An exception to a rule says why, on the same line: `// eslint-disable-line rule -- reason`.
    rules: { '@eslint-community/eslint-comments/require-description': 'error' },
  },
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        // Each file is checked with the tsconfig.json of its own package.
        projectService: { allowDefaultProject: ['*.mjs', 'tools/*.mjs', 'wiki-service/test/fixtures/*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Fastify takes a plugin or hook as an async function or one with a `done`
      // callback; async is its documented form even where nothing is awaited.
      '@typescript-eslint/require-await': 'off',
      // `_name` is unused on purpose: an argument a signature needs, or a property left
      // out of `...rest`.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    // The repository is one npm workspace whose packages use each other by name. A
    // relative import into another package's folder, or a bare import of a package the
    // importing one does not declare, works only by the accident of where npm put a
    // folder, and breaks when that moves. Each file is checked against the package.json
    // nearest to it.
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: ['*/tsconfig.json'], noWarnOnMultipleProjects: true })] },
    rules: {
      'import-x/no-relative-packages': 'error',
      'import-x/no-extraneous-dependencies': ['error', { includeTypes: true }],
    },
  },
  {
    // The service's own code runs in the image, which installs its dependencies only
    // (npm ci --omit=dev): a devDependency imported there would be missing in production.
    files: ['wiki-service/src/**'],
    rules: { 'import-x/no-extraneous-dependencies': ['error', { devDependencies: false, includeTypes: true }] },
  },
  {
    // Tests and their tools read what they test as untyped data: rendered manifests,
    // JSON answers, Prometheus' API. Their shape is what the assertions check, so
    // typing them would restate the chart and the contract in types; `any` is allowed
    // there, and nowhere in the service.
    files: ['**/*.test.ts', 'test-support/**', 'wiki-service/test/**', 'wiki-service/bench/**', 'system-tests/**'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // One way to start a long-running program from a test, and to stop it again:
    // test-support/src/process.ts (execa, with cleanup and a delayed SIGKILL).
    files: ['**/*.test.ts', 'test-support/**', 'wiki-service/test/**', 'system-tests/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'node:child_process',
              importNames: ['spawn', 'fork', 'exec'],
              message: "Start a long-running program with startProcess() from '@wiki/test-support/process'; run one to completion with runCommand().",
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.test.ts'],
    plugins: { vitest },
    rules: {
      ...vitest.configs.recommended.rules,
      'vitest/expect-expect': ['error', { assertFunctionNames: ['expect', 'expect*', 'assert*'] }],
      'vitest/no-disabled-tests': 'error',
      'vitest/no-conditional-expect': 'error',
      'vitest/valid-title': 'error',
      // expect(value, message): Vitest's second argument names what failed.
      'vitest/valid-expect': ['error', { maxArgs: 2 }],
      // `const test = it.skipIf(...)`: a suite's tests that need a missing binary.
      'vitest/no-standalone-expect': ['error', { additionalTestBlockFunctions: ['test'] }],
      // One way to wait (test-support/src/wait.ts), which the support code and the tools
      // outside Vitest share.
      'no-restricted-properties': [
        'error',
        { object: 'vi', property: 'waitFor', message: "Wait with until() from '@wiki/test-support/wait'." },
        { object: 'vi', property: 'waitUntil', message: "Wait with until() from '@wiki/test-support/wait'." },
        { object: 'expect', property: 'poll', message: "Wait with until() from '@wiki/test-support/wait'." },
      ],
    },
  },
  {
    // Plain JavaScript: no type information to check against.
    files: ['**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  prettier,
);
