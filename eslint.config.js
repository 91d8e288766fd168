import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * AssemblyScript's `@inline` on a function is not TypeScript: the parser sees it as a line comment (the line
 * stays, so every reported position is the source's).
 */
const assemblyScript = {
  meta: { name: 'assemblyscript-decorators' },
  preprocess: (text) => [text.replace(/^(\s*)@inline$/gm, '$1// @inline')],
  postprocess: (messages) => messages.flat(),
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', performance: 'readonly' } },
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  { files: ['src/*/assembly/*.ts'], processor: assemblyScript },
);
