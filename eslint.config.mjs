// Lint: ESLint's and typescript-eslint's recommended rules; formatting is Prettier's (npm run format:check).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'cdktf.out/', 'dist/', '**/dist/', '.gen/', 'sim-out/', 'variants/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // tsc's noUnusedLocals/noUnusedParameters decide; `_name` marks a parameter kept for its position.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // A function says one thing: over 60 lines of code, it says several (tests excepted: a test reads as its scenario).
    files: ['**/*.ts'],
    ignores: ['__tests__/**'],
    rules: { 'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true, IIFEs: true }] },
  },
  {
    // Code that reads shapes no type describes — the emulators' wire payloads, Terraform's JSON — and the tests that
    // poke at configs and synthesized JSON: `any` is allowed there, nowhere else.
    files: ['twin/engines/**', 'twin/designs/**', 'twin/synthesized-stage.ts', 'twin/table-input.ts', 'explorer/**', 'synth/terraform.ts', '__tests__/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.cjs', '**/*.mjs', '**/*.js'],
    languageOptions: { globals: { require: 'readonly', module: 'writable', process: 'readonly', console: 'readonly', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
