// The committed src/gql is what GraphQL Code Generator makes from schema.graphql and the
// documents now: regenerate with `npm run codegen` when this fails.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { generate } from '@graphql-codegen/cli';
import { describe, expect, it } from 'vitest';

import config from '../codegen';

describe('generated types', () => {
  it('match schema.graphql and the documents', async () => {
    const root = join(import.meta.dirname, '..');
    const cwd = process.cwd();
    process.chdir(root);
    try {
      const outputs = await generate({ ...config, silent: true, cwd: root }, false);
      expect(outputs.length).toBeGreaterThan(0);
      for (const out of outputs) {
        const committed = readFileSync(join(root, out.filename), 'utf8');
        expect(committed, `${out.filename} is stale: run npm run codegen`).toBe(out.content);
      }
    } finally {
      process.chdir(cwd);
    }
  }, 60_000);
});
