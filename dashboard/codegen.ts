// GraphQL Code Generator: typed documents for every `graphql(...)` call in src/, from the
// committed SDL (host/api prints it; its drift test keeps it current). The output in src/gql
// is committed; src/gql.test.ts fails when it differs from what this config generates.
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['src/**/*.{ts,tsx}', '!src/gql/**/*', '!src/**/*.test.{ts,tsx}'],
  ignoreNoDocuments: true,
  generates: {
    'src/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        enumsAsTypes: true,
        useTypeImports: true,
        scalars: { JSON: 'unknown', Upload: 'File' },
      },
    },
  },
};

export default config;
