import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GEN_AI_PROVIDER } from '../../src/semconv';
import { BUILT_IN_PROVIDER_HOSTS } from '../../src/audit/unaudited/hosts';
import { providerName } from '../../src/instrumentations/vercel-ai/specs';
import { repoRoot } from '../support/harness';

// `gen_ai.provider.name` values come from one table (GEN_AI_PROVIDER); the types derive from it, so
// a name written elsewhere that is not in it does not compile. What is checked here at run time:
// the documentation lists the table, and the places that map to a name map into it.

const names = new Set<string>(Object.values(GEN_AI_PROVIDER));

describe('provider names', () => {
  it('docs/attributes.md lists every name of the table in the gen_ai.provider.name row', () => {
    const row = readFileSync(join(repoRoot, 'docs', 'attributes.md'), 'utf8')
      .split('\n')
      .find((line) => line.startsWith('| `gen_ai.provider.name` |'))!;
    for (const name of names) expect(row, name).toContain(`\`${name}\``);
  });

  it('the built-in hosts and the Vercel AI SDK provider ids map to names of the table', () => {
    for (const [, provider] of BUILT_IN_PROVIDER_HOSTS) expect(names.has(provider), provider).toBe(true);
    for (const id of ['azure.chat', 'google.generative-ai', 'google.vertex.chat', 'amazon-bedrock', 'mistral.chat', 'xai.chat', 'openai.responses', 'anthropic.messages']) {
      expect(names.has(providerName(id)), id).toBe(true);
    }
  });
});
