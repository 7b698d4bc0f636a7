import { it } from 'vitest';
import { callsBesideContrib } from './beside-contrib';

// Contrib registered first: this package's wrapper replaces its wrapper (as any InstrumentationBase
// does), so the call's one GenAI span is this package's trace span.
it('the contrib OpenAI instrumentation inside this one: one GenAI span per call, and one record', async () => {
  await callsBesideContrib('contrib-first');
});
