import { it } from 'vitest';
import { callsBesideContrib } from './beside-contrib';

// This package registered first: the contrib wrapper goes around it (before, it removed it); the
// contrib span is the call's one GenAI span, enriched with the audit attributes.
it('the contrib OpenAI instrumentation outside this one: one GenAI span per call, and one record', async () => {
  await callsBesideContrib('ours-first');
});
