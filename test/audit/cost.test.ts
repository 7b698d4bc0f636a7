import { describe, it, expect, afterEach, vi } from 'vitest';
import { calcPrice, findProvider } from '@pydantic/genai-prices';
import { diag, DiagLogLevel } from '@opentelemetry/api';
import { createCostCalculator, type CostResult } from '../../src/audit/cost';

const M = 1_000_000;

// Counts genai-prices calls made by the calculator, to check what is memoized; pricing is unchanged.
const genaiPricesCalls = vi.hoisted(() => ({ count: 0 }));
vi.mock('@pydantic/genai-prices', async (importOriginal) => {
  const original = await importOriginal<typeof import('@pydantic/genai-prices')>();
  return {
    ...original,
    calcPrice: (...args: Parameters<typeof original.calcPrice>) => {
      genaiPricesCalls.count++;
      return original.calcPrice(...args);
    },
  };
});

function amount(result: CostResult): number {
  if (result.status !== 'priced') throw new Error(`expected a price, got ${JSON.stringify(result)}`);
  return result.amountUsd;
}

/** The bundled price entry of a model, to pin the rates the hand computations below use. */
function bundledPrices(providerId: string, modelId: string): unknown {
  return findProvider({ providerId })?.models.find((m) => m.id === modelId)?.prices;
}

describe('hand computations from the bundled price data', () => {
  const calc = createCostCalculator();

  it('uses the rates the hand computations assume (fails if the pinned data changes)', () => {
    expect(bundledPrices('openai', 'gpt-4o')).toMatchObject({ input_mtok: 2.5, cache_read_mtok: 1.25, output_mtok: 10 });
    expect(bundledPrices('anthropic', 'claude-sonnet-4-0')).toMatchObject({
      input_mtok: 3,
      cache_read_mtok: 0.3,
      cache_write_mtok: 3.75,
      output_mtok: 15,
    });
  });

  it('OpenAI gpt-4o with cached input: cached tokens at 1.25/MTok, the rest of the input at 2.5/MTok', () => {
    // 10,000 input tokens of which 4,000 were cache reads; 500 output tokens.
    const expected = (6_000 * 2.5) / M + (4_000 * 1.25) / M + (500 * 10) / M; // 0.015 + 0.005 + 0.005
    const result = calc.price('openai', 'gpt-4o', { inputTokens: 10_000, cacheReadTokens: 4_000, outputTokens: 500 });
    expect(amount(result)).toBeCloseTo(0.025, 12);
    expect(amount(result)).toBeCloseTo(expected, 12);
    // Treating inputTokens as the uncached count would bill the cached part twice.
    expect(amount(result)).not.toBeCloseTo((10_000 * 2.5 + 4_000 * 1.25 + 500 * 10) / M, 6);
  });

  it('Anthropic claude-sonnet-4 (dated id) with cache reads and cache writes', () => {
    // 10,000 input tokens: 6,000 cache reads, 2,000 cache writes, 2,000 uncached; 500 output tokens.
    const expected = (2_000 * 3) / M + (6_000 * 0.3) / M + (2_000 * 3.75) / M + (500 * 15) / M;
    const result = calc.price('anthropic', 'claude-sonnet-4-20250514', {
      inputTokens: 10_000,
      cacheReadTokens: 6_000,
      cacheCreationTokens: 2_000,
      outputTokens: 500,
    });
    expect(amount(result)).toBeCloseTo(0.0228, 12);
    expect(amount(result)).toBeCloseTo(expected, 12);
  });

  it('agrees with genai-prices called directly', () => {
    const usage = { inputTokens: 123_456, cacheReadTokens: 100_000, cacheCreationTokens: 3_000, outputTokens: 7_890 };
    const direct = calcPrice(
      { input_tokens: 123_456, cache_read_tokens: 100_000, cache_write_tokens: 3_000, output_tokens: 7_890 },
      'claude-3-5-haiku-latest',
      { providerId: 'anthropic' },
    );
    expect(direct).not.toBeNull();
    expect(amount(calc.price('anthropic', 'claude-3-5-haiku-latest', usage))).toBeCloseTo(direct!.total_price, 12);
  });

  it('prices reasoning tokens as output unless the model has a reasoning rate', () => {
    // gpt-5 has no separate reasoning rate: reasoning is part of the 10/MTok output.
    const gpt5 = (reasoningTokens: number) =>
      amount(calc.price('openai', 'gpt-5', { inputTokens: 1_000, outputTokens: 2_000, reasoningTokens }));
    expect(gpt5(1_500)).toBeCloseTo((1_000 * 1.25 + 2_000 * 10) / M, 12);
    expect(gpt5(1_500)).toBe(gpt5(0));

    // Perplexity's sonar-deep-research bills reasoning at 3/MTok and other output at 8/MTok.
    expect(bundledPrices('perplexity', 'sonar-deep-research')).toMatchObject({
      input_mtok: 2,
      output_mtok: 8,
      output_reasoning_mtok: 3,
    });
    const sonar = calc.price('perplexity', 'sonar-deep-research', { inputTokens: 1_000, outputTokens: 1_000, reasoningTokens: 400 });
    expect(amount(sonar)).toBeCloseTo((1_000 * 2 + 600 * 8 + 400 * 3) / M, 12);
  });

  it('prices tiered models by the tier of the call (claude-sonnet-4-5 above 200k input tokens)', () => {
    const prices = bundledPrices('anthropic', 'claude-sonnet-4-5') as Record<string, { base: number; tiers: unknown[] }>;
    expect(prices.input_mtok).toMatchObject({ base: 3, tiers: [{ start: 200_000, price: 6 }] });
    expect(prices.output_mtok).toMatchObject({ base: 15, tiers: [{ start: 200_000, price: 22.5 }] });
    const small = calc.price('anthropic', 'claude-sonnet-4-5', { inputTokens: 100_000, outputTokens: 1_000 });
    const large = calc.price('anthropic', 'claude-sonnet-4-5', { inputTokens: 250_000, outputTokens: 1_000 });
    expect(amount(small)).toBeCloseTo((100_000 * 3 + 1_000 * 15) / M, 12);
    expect(amount(large)).toBeCloseTo((250_000 * 6 + 1_000 * 22.5) / M, 12);
  });

  it('prices date-dependent models by the time of the call (o3 before and after its price cut)', () => {
    const usage = { inputTokens: M, outputTokens: M };
    expect(amount(calc.price('openai', 'o3', usage, new Date('2025-06-01T00:00:00Z')))).toBeCloseTo(10 + 40, 9);
    expect(amount(calc.price('openai', 'o3', usage, new Date('2025-07-01T00:00:00Z')))).toBeCloseTo(2 + 8, 9);
  });

  it('prices an embedding call that reports input tokens only', () => {
    expect(amount(calc.price('openai', 'text-embedding-3-small', { inputTokens: 1_000 }))).toBeCloseTo((1_000 * 0.02) / M, 15);
  });

  it('maps GenAI provider names to genai-prices providers (x_ai -> x-ai)', () => {
    expect(amount(calc.price('x_ai', 'grok-3', { inputTokens: M, outputTokens: M }))).toBeCloseTo(3 + 15, 9);
  });

  it('matches model ids case-insensitively and ignores surrounding whitespace', () => {
    expect(amount(calc.price('openai', ' GPT-4o ', { inputTokens: M, outputTokens: 0 }))).toBeCloseTo(2.5, 12);
  });

  it('prices a known model with zero tokens at exactly 0 (a real price, not a missing one)', () => {
    expect(calc.price('openai', 'gpt-4o', { inputTokens: 0, outputTokens: 0 })).toEqual({ status: 'priced', amountUsd: 0 });
  });

  it('gives the same answer on repeated (memoized) calls', () => {
    const usage = { inputTokens: 5_000, cacheReadTokens: 1_000, outputTokens: 100 };
    const first = calc.price('openai', 'gpt-4o-mini', usage);
    for (let i = 0; i < 5; i++) expect(calc.price('openai', 'gpt-4o-mini', usage)).toEqual(first);
    expect(amount(first)).toBeCloseTo((4_000 * 0.15 + 1_000 * 0.075 + 100 * 0.6) / M, 12);
  });

  afterEach(() => {
    diag.disable();
  });

  it.each(['openai', 'anthropic', 'google', 'mistral', 'perplexity'])(
    'agrees with genai-prices on every %s model of the bundled data, cached and reasoning tokens included',
    (providerId) => {
      // Flat prices are computed from coefficients measured once; if that measurement fails its own
      // check, pricing silently degrades to per-call genai-prices, and says so at debug level.
      const notAffine: string[] = [];
      const noop = (): void => {};
      diag.setLogger(
        { error: noop, warn: noop, info: noop, verbose: noop, debug: (message: string) => void notAffine.push(message) },
        { logLevel: DiagLogLevel.DEBUG, suppressOverrideMessage: true },
      );
      const fresh = createCostCalculator();
      const at = new Date('2026-01-15T12:00:00Z');
      const models = findProvider({ providerId })!.models;
      expect(models.length).toBeGreaterThan(5);
      let compared = 0;
      for (const model of models) {
        const match = model.match as { equals?: string; or?: Array<{ equals?: string }> };
        const name = match.equals ?? match.or?.find((m) => m.equals !== undefined)?.equals;
        if (name === undefined) continue;
        for (const [input, cacheRead, cacheWrite, output, reasoning] of [
          [10_000, 4_000, 1_000, 2_000, 500],
          [250_000, 10_000, 0, 30_000, 0],
        ]) {
          const direct = calcPrice(
            {
              input_tokens: input,
              cache_read_tokens: cacheRead,
              cache_write_tokens: cacheWrite,
              output_tokens: output,
              output_reasoning_tokens: reasoning,
            },
            name,
            { providerId, timestamp: at },
          );
          if (direct === null || direct.model.id !== model.id) continue;
          const ours = fresh.price(providerId, name, { inputTokens: input, cacheReadTokens: cacheRead, cacheCreationTokens: cacheWrite, outputTokens: output, reasoningTokens: reasoning }, at);
          expect(amount(ours), `${providerId}/${name}`).toBeCloseTo(direct.total_price, 10);
          compared++;
        }
      }
      expect(compared).toBeGreaterThan(10);
      expect(notAffine.filter((m) => m.includes('not affine'))).toEqual([]);
    },
  );

  it('looks a model up once, and prices flat-priced models without calling genai-prices again', () => {
    const fresh = createCostCalculator();
    const usage = { inputTokens: 5_000, cacheReadTokens: 1_000, outputTokens: 100 };
    const first = fresh.price('anthropic', 'claude-sonnet-4-0', usage);
    const afterFirst = genaiPricesCalls.count;
    for (let i = 0; i < 100; i++) expect(fresh.price('anthropic', 'claude-sonnet-4-0', usage)).toEqual(first);
    expect(genaiPricesCalls.count).toBe(afterFirst);
    // Unknown models are remembered too.
    fresh.price('openai', 'no-such-model', usage);
    const afterUnknown = genaiPricesCalls.count;
    fresh.price('openai', 'no-such-model', usage);
    expect(genaiPricesCalls.count).toBe(afterUnknown);
  });

  it('prices tiered models with genai-prices on each call, after a single lookup', () => {
    const fresh = createCostCalculator();
    fresh.price('anthropic', 'claude-sonnet-4-5', { inputTokens: 10 });
    const before = genaiPricesCalls.count;
    for (let i = 0; i < 10; i++) fresh.price('anthropic', 'claude-sonnet-4-5', { inputTokens: 10 });
    expect(genaiPricesCalls.count - before).toBe(10);
  });

  it('keeps pricing correctly after its model cache overflows', () => {
    const fresh = createCostCalculator();
    for (let i = 0; i < 2_100; i++) fresh.price('openai', `no-such-model-${i}`, { inputTokens: 1 });
    expect(amount(fresh.price('openai', 'gpt-4o', { inputTokens: M, outputTokens: 0 }))).toBeCloseTo(2.5, 12);
  });
});

describe('unpriced', () => {
  const calc = createCostCalculator();

  it('is the answer for a model the price data does not know, never an amount of 0', () => {
    const result = calc.price('openai', 'gpt-nonexistent-9000', { inputTokens: 100, outputTokens: 100 });
    expect(result.status).toBe('unpriced');
    expect(result).not.toHaveProperty('amountUsd');
    expect(result.status === 'unpriced' && result.reason).toContain('"gpt-nonexistent-9000"');
  });

  it('names an unknown provider', () => {
    const result = calc.price('ibm.watsonx.ai', 'granite-13b', { inputTokens: 100, outputTokens: 100 });
    expect(result.status).toBe('unpriced');
    expect(result.status === 'unpriced' && result.reason).toMatch(/provider "ibm.watsonx.ai" is not in the bundled/);
  });

  it('does not price a model under a provider that does not sell it', () => {
    expect(calc.price('anthropic', 'gpt-4o', { inputTokens: 100, outputTokens: 100 }).status).toBe('unpriced');
  });

  it('is the answer for an empty model name', () => {
    expect(calc.price('openai', '', { inputTokens: 1 })).toEqual({ status: 'unpriced', reason: 'the model name is empty' });
  });
});

describe('no_usage', () => {
  const calc = createCostCalculator();

  it('is the answer when the response reported no usage', () => {
    const result = calc.price('openai', 'gpt-4o', undefined);
    expect(result.status).toBe('no_usage');
    expect(result).not.toHaveProperty('amountUsd');
  });

  it('is the answer when the input count is missing', () => {
    expect(calc.price('openai', 'gpt-4o', { outputTokens: 10 })).toEqual({
      status: 'no_usage',
      reason: 'the response reported no input token count',
    });
    expect(calc.price('openai', 'gpt-4o', {}).status).toBe('no_usage');
  });

  it.each([
    ['a negative count', { inputTokens: -1, outputTokens: 1 }, /non-negative finite/],
    ['NaN', { inputTokens: 10, outputTokens: Number.NaN }, /non-negative finite/],
    ['Infinity', { inputTokens: Number.POSITIVE_INFINITY }, /non-negative finite/],
    ['cache parts above the input total', { inputTokens: 100, cacheReadTokens: 80, cacheCreationTokens: 30 }, /must include cache tokens/],
    ['reasoning above the output total', { inputTokens: 10, outputTokens: 5, reasoningTokens: 6 }, /must include them/],
  ])('explains invalid usage (%s) instead of throwing or pricing it', (_label, usage, reason) => {
    const result = calc.price('openai', 'gpt-4o', usage);
    expect(result.status).toBe('no_usage');
    expect(result.status === 'no_usage' && result.reason).toMatch(reason);
  });

  it('rejects an invalid `at` as a programming error', () => {
    expect(() => calc.price('openai', 'gpt-4o', { inputTokens: 1 }, new Date(Number.NaN))).toThrow(RangeError);
  });
});

describe('overrides', () => {
  it('price a model the data does not know', () => {
    const calc = createCostCalculator({ 'acme-llm-1': { inputPerMTok: 1, outputPerMTok: 4 } });
    expect(amount(calc.price('acme', 'acme-llm-1', { inputTokens: 2_000, outputTokens: 500 }))).toBeCloseTo(
      (2_000 * 1 + 500 * 4) / M,
      12,
    );
  });

  it('win over the bundled price data', () => {
    const calc = createCostCalculator({ 'gpt-4o': { inputPerMTok: 1, outputPerMTok: 2 } });
    expect(amount(calc.price('openai', 'gpt-4o', { inputTokens: M, outputTokens: M }))).toBeCloseTo(3, 12);
  });

  it('accept provider/model keys, which win over a bare model key', () => {
    const calc = createCostCalculator({
      'my-model': { inputPerMTok: 1, outputPerMTok: 1 },
      'azure.ai.openai/my-model': { inputPerMTok: 5, outputPerMTok: 5 },
    });
    const usage = { inputTokens: M, outputTokens: 0 };
    expect(amount(calc.price('azure.ai.openai', 'my-model', usage))).toBeCloseTo(5, 12);
    expect(amount(calc.price('openai', 'my-model', usage))).toBeCloseTo(1, 12);
  });

  it('match case-insensitively', () => {
    const calc = createCostCalculator({ 'Acme/Big-Model': { inputPerMTok: 7, outputPerMTok: 0 } });
    expect(amount(calc.price('acme', 'big-model', { inputTokens: M }))).toBeCloseTo(7, 12);
  });

  it('apply cache rates to the cache parts of the input', () => {
    const calc = createCostCalculator({
      cached: { inputPerMTok: 2, outputPerMTok: 8, cacheReadPerMTok: 0.5, cacheWritePerMTok: 2.5 },
    });
    const usage = { inputTokens: 10_000, cacheReadTokens: 6_000, cacheCreationTokens: 1_000, outputTokens: 100 };
    expect(amount(calc.price('x', 'cached', usage))).toBeCloseTo((3_000 * 2 + 6_000 * 0.5 + 1_000 * 2.5 + 100 * 8) / M, 12);
  });

  it('charge cache parts at the input rate when no cache rate is given', () => {
    const calc = createCostCalculator({ plain: { inputPerMTok: 2, outputPerMTok: 8 } });
    const usage = { inputTokens: 10_000, cacheReadTokens: 6_000, cacheCreationTokens: 1_000, outputTokens: 100 };
    expect(amount(calc.price('x', 'plain', usage))).toBeCloseTo((10_000 * 2 + 100 * 8) / M, 12);
  });

  it.each([
    ['a negative rate', { m: { inputPerMTok: -1, outputPerMTok: 1 } }, /inputPerMTok=-1; rates must be non-negative finite/],
    ['NaN', { m: { inputPerMTok: 1, outputPerMTok: Number.NaN } }, /outputPerMTok=NaN/],
    ['Infinity', { m: { inputPerMTok: 1, outputPerMTok: 1, cacheReadPerMTok: Number.POSITIVE_INFINITY } }, /cacheReadPerMTok=Infinity/],
    ['a string rate', { m: { inputPerMTok: '1', outputPerMTok: 1 } }, /inputPerMTok=1; rates must be/],
    ['a missing output rate', { m: { inputPerMTok: 1 } }, /"m" is missing outputPerMTok/],
    ['a misspelt field', { m: { inputPerMTok: 1, outputPerMTok: 1, cachedReadPerMTok: 0.1 } }, /unknown field "cachedReadPerMTok"/],
    ['a non-object', { m: 3 }, /"m" must be an object/],
    ['keys that differ only in case', { 'Model-A': { inputPerMTok: 1, outputPerMTok: 1 }, 'model-a': { inputPerMTok: 2, outputPerMTok: 2 } }, /collide/],
    ['an empty key', { ' ': { inputPerMTok: 1, outputPerMTok: 1 } }, /empty model id/],
  ])('are validated at creation: %s', (_label, overrides, message) => {
    expect(() => createCostCalculator(overrides as never)).toThrow(message);
  });

  it('accept zero rates (free models are priced at 0, not unpriced)', () => {
    const calc = createCostCalculator({ free: { inputPerMTok: 0, outputPerMTok: 0 } });
    expect(calc.price('x', 'free', { inputTokens: 100, outputTokens: 100 })).toEqual({ status: 'priced', amountUsd: 0 });
  });
});

describe('audio and image parts (OpenAI Realtime usage)', () => {
  const usage = { inputTokens: 1000, outputTokens: 500, cacheReadTokens: 100 };
  const modalities = { inputAudio: 600, cacheReadAudio: 50, outputAudio: 400 };

  it('are priced at the model’s audio rates (gpt-realtime: audio input $32, cached $0.40, output $64 per MTok)', () => {
    const calc = createCostCalculator();
    // 550 uncached audio, 350 uncached text, 50 + 50 cached, 400 audio out, 100 text out.
    const expected = (550 * 32 + 350 * 4 + 50 * 0.4 + 50 * 0.4 + 400 * 64 + 100 * 16) / M;
    expect(calc.price('openai', 'gpt-realtime', { ...usage, modalities })).toEqual({ status: 'priced', amountUsd: expected });
    // Without the parts, all of it is text: the flat path, unchanged.
    expect(calc.price('openai', 'gpt-realtime', usage)).toEqual({ status: 'priced', amountUsd: (900 * 4 + 100 * 0.4 + 500 * 16) / M });
    // Zero parts are no parts: the same as text.
    expect(calc.price('openai', 'gpt-realtime', { ...usage, modalities: { inputAudio: 0, outputAudio: 0 } })).toEqual(calc.price('openai', 'gpt-realtime', usage));
  });

  it('an invalid part is no_usage with the reason, never a price', () => {
    const calc = createCostCalculator();
    const result = calc.price('openai', 'gpt-realtime', { ...usage, modalities: { inputAudio: -3 } });
    expect(result.status).toBe('no_usage');
    expect((result as { reason: string }).reason).toMatch(/inputAudio tokens must be a non-negative finite number \(-3\)/);
  });
});
