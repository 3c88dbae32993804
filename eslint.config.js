import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Another room is reached only through its face (`../<room>/index.js`), never a file inside it.
// Applied to the rooms meta, gateway, cluster, cli, broker and alarms.
const ROOM_FACE_ONLY = {
  regex:
    '^(\\.\\./)+(store|protocol|broker|meta|gateway|cluster|cli|model|telemetry|jobs|alarms)/(?!index\\.js$)',
  message: "Import another room only through its face, '../<room>/index.js'.",
};

export default defineConfig(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.tap/**',
      'coverage/**',
      'data/**',
      'openapi/**',
      '**/*.js',
      '**/*.mjs',
    ],
  },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['test/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['src/store/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            '../gateway/*',
            '../broker/*',
            '../meta/*',
            '../cluster/*',
            '../protocol/*',
            'ioredis',
            'fastify',
            'bullmq',
          ],
        },
      ],
    },
  },
  {
    files: ['src/protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            '../gateway/*',
            '../broker/*',
            '../meta/*',
            '../cluster/*',
            '../store/*',
            'ioredis',
            'fastify',
          ],
        },
      ],
    },
  },
  {
    files: ['src/gateway/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../store/*', '../../store/*', '../broker/*', '../../broker/*'] },
            ROOM_FACE_ONLY,
          ],
        },
      ],
    },
  },
  {
    files: [
      'src/meta/**/*.ts',
      'src/cluster/**/*.ts',
      'src/cli/**/*.ts',
      'src/broker/**/*.ts',
      'src/alarms/**/*.ts',
    ],
    rules: { 'no-restricted-imports': ['error', { patterns: [ROOM_FACE_ONLY] }] },
  },
  {
    files: ['src/model/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./',
              message: 'The model is plain data shared by every room: it imports nothing.',
            },
          ],
        },
      ],
    },
  },
);
