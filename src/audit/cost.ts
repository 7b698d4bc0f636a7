/**
 * Cost of an LLM call in USD, from the price data bundled with @pydantic/genai-prices (never fetched:
 * the package's `updatePrices` is not used, so pricing works offline and is reproducible for a given
 * package version), with operator overrides for models the data lacks or prices differently.
 *
 * genai-prices' `input_tokens` is the total input count with cache reads and cache writes included;
 * it prices the uncached remainder at the input rate and the cache parts at their own rates. That is
 * the same meaning as the GenAI conventions' `gen_ai.usage.input_tokens`, so usage passes through
 * unchanged (Anthropic's raw API reports input_tokens without cache tokens: callers add them first).
 */
import {
  calcPrice,
  findProvider,
  type ModelInfo,
  type ModelPrice,
  type PriceCalculationResult,
  type PriceOptions,
  type Provider,
  type Usage,
} from '@pydantic/genai-prices';
import { diag } from '@opentelemetry/api';
import { GEN_AI_PROVIDER as P, type KnownProviderName } from '../semconv';

export interface UsageForCost {
  /** Total input tokens INCLUDING cache reads and cache creation (the GenAI conventions' gen_ai.usage.input_tokens). */
  inputTokens?: number;
  /** Total output tokens, reasoning tokens included (as OpenAI and Anthropic report them). */
  outputTokens?: number;
  cacheReadTokens?: number;
  cacheCreationTokens?: number;
  /** The part of outputTokens spent on reasoning; only models with a separate reasoning rate price it differently. */
  reasoningTokens?: number;
  /**
   * The audio and image parts of the counts above (OpenAI Realtime reports them): priced at their
   * own rates where the model has them (gpt-realtime's audio input costs 8 times its text input).
   */
  modalities?: ModalityTokens;
}

/** Token counts by modality, each a part of the total it belongs to (input, cache read, output). */
export interface ModalityTokens {
  inputAudio?: number;
  cacheReadAudio?: number;
  outputAudio?: number;
  inputImage?: number;
  cacheReadImage?: number;
}

// genai-prices' names of those parts.
const MODALITY_FIELDS: ReadonlyArray<readonly [keyof ModalityTokens, string]> = [
  ['inputAudio', 'input_audio_tokens'],
  ['cacheReadAudio', 'cache_audio_read_tokens'],
  ['outputAudio', 'output_audio_tokens'],
  ['inputImage', 'input_image_tokens'],
  ['cacheReadImage', 'cache_image_read_tokens'],
];

/**
 * USD per million tokens. Without `cacheReadPerMTok`/`cacheWritePerMTok`, cache reads and writes
 * are charged at `inputPerMTok`, as they are part of the input.
 */
export interface ModelPriceOverride {
  inputPerMTok: number;
  outputPerMTok: number;
  cacheReadPerMTok?: number;
  cacheWritePerMTok?: number;
}

export type CostResult =
  | { status: 'priced'; amountUsd: number }
  | { status: 'unpriced'; reason: string } // model unknown to the price data and not overridden (or its price entry unusable)
  | { status: 'no_usage'; reason: string }; // usage missing (or invalid): cannot price

export interface CostCalculator {
  /**
   * Prices one call. `provider` is the `gen_ai.provider.name` value, `at` the time of the call
   * (prices with a start date depend on it; default: now).
   *
   * Never throws for data the provider sent: usage that cannot be priced (missing, negative, cache
   * tokens above the input total) is `no_usage` with the reason. Throws TypeError/RangeError only for
   * arguments of the wrong type or an invalid `at`.
   */
  price(provider: string, model: string, usage: UsageForCost | undefined, at?: Date): CostResult;
}

// gen_ai.provider.name values whose genai-prices provider is found under another id (or, for Azure
// OpenAI, would otherwise match OpenAI's list prices through genai-prices' `contains: openai` rule).
const PROVIDER_ALIASES: Readonly<Partial<Record<KnownProviderName, string>>> = {
  [P.gcpGenAi]: 'google',
  [P.gemini]: 'google',
  [P.vertexAi]: 'google',
  [P.bedrock]: 'aws',
  [P.azureOpenai]: 'azure',
  [P.azureAiInference]: 'azure',
  [P.mistral]: 'mistral',
  [P.xai]: 'x-ai',
};

const OVERRIDE_PROVIDER_ID = 'otel-llm-audit-override';
const OVERRIDE_FIELDS: readonly string[] = ['inputPerMTok', 'outputPerMTok', 'cacheReadPerMTok', 'cacheWritePerMTok'];
// Model names come from requests, so their number is not bounded by anything this package controls.
const MAX_CACHED_MODELS = 1024;
const PICODOLLARS_PER_USD = 1e12;
// Resolution only needs the matched provider and model; an empty usage prices to 0 without warnings.
const EMPTY_USAGE: Usage = Object.freeze({}) as Usage;

/**
 * Cost as an affine function of the five usage counts. For a model with flat (untiered,
 * unconditional) prices, genai-prices' result is exactly that: each count is split into leaves
 * (uncached input = input - cache parts, …) linearly and each leaf has a constant rate, plus any
 * per-request fee. The coefficients are measured from genai-prices itself (see affineFor), so no
 * pricing rule is re-implemented here and a price call costs a handful of multiplications instead of
 * genai-prices' per-call validation of the price table.
 */
interface AffinePrice {
  readonly base: number;
  readonly input: number;
  readonly output: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
  readonly reasoning: number;
}

/** The price of `u` under an affine price: the one formula both the hot path and the probe check use. */
function affineTotal(p: AffinePrice, u: ValidUsage): number {
  return (
    p.base +
    p.input * u.input_tokens +
    p.output * u.output_tokens +
    p.cacheRead * u.cache_read_tokens +
    p.cacheWrite * u.cache_write_tokens +
    p.reasoning * u.output_reasoning_tokens
  );
}

/** A (provider, model) pair resolved once. */
type Resolution =
  // `options`: for a call whose usage has modality parts, which the affine price does not cover.
  | { readonly kind: 'affine'; readonly price: AffinePrice; readonly options: PriceOptions }
  // Tiered or date-dependent prices: genai-prices prices each call, against a one-model provider.
  | { readonly kind: 'library'; readonly provider: Provider; readonly options: PriceOptions }
  | { readonly kind: 'unpriced'; readonly reason: string };

interface ValidUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  output_reasoning_tokens: number;
}

/**
 * Creates a calculator. `overrides` are keyed by model id or `provider/model` (case-insensitive; the
 * `provider/model` form wins) and take precedence over the bundled price data.
 *
 * @throws TypeError/RangeError when an override is not an object of non-negative finite numbers,
 *   lacks `inputPerMTok`/`outputPerMTok`, has an unknown field, or two keys differ only in case.
 */
export function createCostCalculator(overrides?: Record<string, ModelPriceOverride>): CostCalculator {
  return new PriceDataCostCalculator(compileOverrides(overrides));
}

class PriceDataCostCalculator implements CostCalculator {
  readonly #overrides: ReadonlyMap<string, ModelPrice>;
  // provider -> model -> resolution; nested so that a hit allocates no composite key.
  readonly #resolved = new Map<string, Map<string, Resolution>>();
  #resolvedCount = 0;
  // Reused for every call: price() is synchronous and genai-prices only reads it.
  readonly #usage: ValidUsage = {
    input_tokens: 0,
    output_tokens: 0,
    cache_read_tokens: 0,
    cache_write_tokens: 0,
    output_reasoning_tokens: 0,
  };

  constructor(overrides: ReadonlyMap<string, ModelPrice>) {
    this.#overrides = overrides;
  }

  price(provider: string, model: string, usage: UsageForCost | undefined, at?: Date): CostResult {
    if (typeof provider !== 'string' || typeof model !== 'string') {
      throw new TypeError('CostCalculator.price: provider and model must be strings');
    }
    if (at !== undefined && !(at instanceof Date && !Number.isNaN(at.getTime()))) {
      throw new RangeError('CostCalculator.price: `at` must be a valid Date');
    }
    const resolution = this.#resolve(provider, model);
    if (resolution.kind === 'unpriced') return { status: 'unpriced', reason: resolution.reason };

    if (usage === undefined || usage === null) {
      return { status: 'no_usage', reason: 'the response reported no token usage' };
    }
    const problem = this.#fillUsage(usage);
    if (problem !== undefined) return { status: 'no_usage', reason: problem };
    const u = this.#usage;

    const modalities = modalityUsage(usage.modalities);
    if (typeof modalities === 'string') return { status: 'no_usage', reason: modalities };
    let total: number;
    if (resolution.kind === 'affine' && modalities === undefined) {
      total = affineTotal(resolution.price, u);
    } else {
      const options = at === undefined || resolution.kind === 'affine' ? resolution.options : { provider: resolution.provider, timestamp: at };
      try {
        const result = calcPrice((modalities === undefined ? u : { ...u, ...modalities }) as unknown as Usage, model, options);
        if (result === null) {
          // Cannot happen for a provider built around this very model; kept as a typed answer, not a 0.
          return { status: 'unpriced', reason: `genai-prices did not match ${describe(provider, model)}` };
        }
        total = result.total_price;
      } catch (error) {
        return { status: 'unpriced', reason: `genai-prices could not price ${describe(provider, model)}: ${messageOf(error)}` };
      }
    }
    // Floating-point noise (0.022800000000000008) is cut at a picodollar, four orders of magnitude
    // below the price of one token of the cheapest model; `+ 0` turns a rounded -0 into 0.
    const amountUsd = Math.round(total * PICODOLLARS_PER_USD) / PICODOLLARS_PER_USD + 0;
    if (!Number.isFinite(amountUsd) || amountUsd < 0) {
      return { status: 'unpriced', reason: `pricing ${describe(provider, model)} gave an invalid amount (${total})` };
    }
    return { status: 'priced', amountUsd };
  }

  /** Validates `usage` into the reusable usage record, or says why it cannot be priced. */
  #fillUsage(usage: UsageForCost): string | undefined {
    const input = usage.inputTokens;
    if (input === undefined) {
      return 'the response reported no input token count';
    }
    const output = usage.outputTokens ?? 0; // embeddings report input only
    const cacheRead = usage.cacheReadTokens ?? 0;
    const cacheWrite = usage.cacheCreationTokens ?? 0;
    const reasoning = usage.reasoningTokens ?? 0;
    if (!isCount(input) || !isCount(output) || !isCount(cacheRead) || !isCount(cacheWrite) || !isCount(reasoning)) {
      return (
        'invalid usage: token counts must be non-negative finite numbers ' +
        `(input=${String(input)}, output=${String(output)}, cacheRead=${String(cacheRead)}, ` +
        `cacheCreation=${String(cacheWrite)}, reasoning=${String(reasoning)})`
      );
    }
    if (cacheRead + cacheWrite > input) {
      return (
        `invalid usage: cache read (${cacheRead}) + cache creation (${cacheWrite}) tokens exceed the input ` +
        `total (${input}); inputTokens must include cache tokens`
      );
    }
    if (reasoning > output) {
      return `invalid usage: reasoning tokens (${reasoning}) exceed the output total (${output}); outputTokens must include them`;
    }
    const target = this.#usage;
    target.input_tokens = input;
    target.output_tokens = output;
    target.cache_read_tokens = cacheRead;
    target.cache_write_tokens = cacheWrite;
    target.output_reasoning_tokens = reasoning;
    return undefined;
  }

  #resolve(provider: string, model: string): Resolution {
    let byModel = this.#resolved.get(provider);
    const cached = byModel?.get(model);
    if (cached !== undefined) return cached;

    const resolution = this.#lookUp(provider, model);
    if (this.#resolvedCount >= MAX_CACHED_MODELS) {
      this.#resolved.clear();
      this.#resolvedCount = 0;
      byModel = undefined;
    }
    if (byModel === undefined) {
      byModel = new Map();
      this.#resolved.set(provider, byModel);
    }
    byModel.set(model, resolution);
    this.#resolvedCount++;
    return resolution;
  }

  /** The expensive part (linear scans over the price data with pattern matching), done once per pair. */
  #lookUp(provider: string, model: string): Resolution {
    const normalizedModel = model.trim().toLowerCase();
    if (normalizedModel === '') return { kind: 'unpriced', reason: 'the model name is empty' };
    const normalizedProvider = provider.trim().toLowerCase();

    const override =
      this.#overrides.get(`${normalizedProvider}/${normalizedModel}`) ?? this.#overrides.get(normalizedModel);
    if (override !== undefined) {
      // Built per model rather than per key: a `provider/model` key must still match the bare model.
      const overridden: Provider = {
        id: OVERRIDE_PROVIDER_ID,
        name: 'otel-llm-audit price override',
        api_pattern: '',
        models: [{ id: normalizedModel, match: { equals: normalizedModel }, prices: override }],
      };
      return resolutionFor(overridden, model, describe(provider, model));
    }

    const providerId = (PROVIDER_ALIASES as Readonly<Record<string, string | undefined>>)[normalizedProvider] ?? normalizedProvider;
    let found: PriceCalculationResult;
    try {
      // An empty provider lets genai-prices infer it from the model name.
      found = calcPrice(EMPTY_USAGE, model, providerId === '' ? undefined : { providerId });
    } catch (error) {
      return { kind: 'unpriced', reason: `genai-prices failed to look up ${describe(provider, model)}: ${messageOf(error)}` };
    }
    if (found === null) {
      const knownProvider = providerId === '' || findProvider({ providerId }) !== undefined;
      return {
        kind: 'unpriced',
        reason: knownProvider
          ? `no price for ${describe(provider, model)} in the bundled genai-prices data and no override configured`
          : `provider ${JSON.stringify(provider)} is not in the bundled genai-prices data and no override is configured ` +
            `for model ${JSON.stringify(model)}`,
      };
    }
    // A one-model provider: later calls skip the provider and model scans. The original provider id is
    // kept because genai-prices applies provider-specific rules by id.
    const single: Provider = {
      id: found.provider.id,
      name: found.provider.name,
      api_pattern: found.provider.api_pattern,
      models: [{ ...found.model, match: { equals: normalizedModel } }],
    };
    return resolutionFor(single, model, describe(provider, model));
  }
}

function resolutionFor(provider: Provider, model: string, description: string): Resolution {
  const options: PriceOptions = { provider };
  const info = provider.models[0]!;
  if (isFlat(info)) {
    try {
      const price = affineFor(model, options);
      if (price !== undefined) return { kind: 'affine', price, options };
      // Still correct through genai-prices, only slower; worth knowing when a new genai-prices
      // version changes how flat prices combine.
      diag.debug(`otel-llm-audit: the flat price of ${description} is not affine in usage; pricing each call with genai-prices`);
    } catch (error) {
      return { kind: 'unpriced', reason: `genai-prices could not price ${description}: ${messageOf(error)}` };
    }
  }
  return { kind: 'library', provider, options };
}

/** One price for all dates, and no tier whose rate depends on the size of the call. */
function isFlat(info: ModelInfo): boolean {
  if (Array.isArray(info.prices)) return false;
  for (const rate of Object.values(info.prices)) {
    if (rate !== undefined && typeof rate !== 'number') return false;
  }
  return true;
}

// Probe usages: the origin and one step along each of the five counts, each step a valid usage on its
// own (cache parts and reasoning within their totals). Six affinely independent points determine an
// affine function, so the coefficients below reproduce genai-prices exactly wherever it is affine.
const STEP = 1_000_000;
const PROBE_ORIGIN = probe(0, 0, 0, 0, 0);
const PROBE_INPUT = probe(STEP, 0, 0, 0, 0);
const PROBE_OUTPUT = probe(0, STEP, 0, 0, 0);
const PROBE_CACHE_READ = probe(STEP, 0, STEP, 0, 0);
const PROBE_CACHE_WRITE = probe(STEP, 0, 0, STEP, 0);
const PROBE_REASONING = probe(0, STEP, 0, 0, STEP);
// A point off the probe axes: if the model were not affine after all, this disagrees.
const PROBE_CHECK = probe(1_234_567, 345_678, 234_567, 123_456, 12_345);

/** The affine coefficients of genai-prices' price for `model`, or undefined if it is not affine. */
function affineFor(model: string, options: PriceOptions): AffinePrice | undefined {
  const at = (usage: Usage): number => {
    const result = calcPrice(usage, model, options);
    if (result === null) throw new Error('the model did not match its own price entry');
    return result.total_price;
  };
  const base = at(PROBE_ORIGIN);
  const inputAtStep = at(PROBE_INPUT);
  const outputAtStep = at(PROBE_OUTPUT);
  const price: AffinePrice = {
    base,
    input: (inputAtStep - base) / STEP,
    output: (outputAtStep - base) / STEP,
    // Moving a step of input into the cache part changes its rate from input to cache read.
    cacheRead: (at(PROBE_CACHE_READ) - inputAtStep) / STEP,
    cacheWrite: (at(PROBE_CACHE_WRITE) - inputAtStep) / STEP,
    reasoning: (at(PROBE_REASONING) - outputAtStep) / STEP,
  };
  const expected = at(PROBE_CHECK);
  const u = PROBE_CHECK as unknown as ValidUsage;
  const actual = affineTotal(price, u);
  return Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)) ? price : undefined;
}

function probe(input: number, output: number, cacheRead: number, cacheWrite: number, reasoning: number): Usage {
  const usage: ValidUsage = {
    input_tokens: input,
    output_tokens: output,
    cache_read_tokens: cacheRead,
    cache_write_tokens: cacheWrite,
    output_reasoning_tokens: reasoning,
  };
  return Object.freeze(usage) as unknown as Usage;
}

/** genai-prices' modality counts of `tokens` (undefined when it has none), or why they cannot be priced. */
function modalityUsage(tokens: ModalityTokens | undefined): Record<string, number> | string | undefined {
  if (tokens === undefined) return undefined;
  let out: Record<string, number> | undefined;
  for (const [name, field] of MODALITY_FIELDS) {
    const count = tokens[name];
    if (count === undefined) continue;
    if (!isCount(count)) return `invalid usage: ${name} tokens must be a non-negative finite number (${String(count)})`;
    if (count > 0) (out ??= {})[field] = count;
  }
  return out;
}

function describe(provider: string, model: string): string {
  return `model ${JSON.stringify(model)} of provider ${JSON.stringify(provider)}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** Validates overrides and turns each into genai-prices rates, keyed case-insensitively. */
function compileOverrides(overrides: Record<string, ModelPriceOverride> | undefined): ReadonlyMap<string, ModelPrice> {
  const compiled = new Map<string, ModelPrice>();
  if (overrides === undefined) return compiled;
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
    throw new TypeError('createCostCalculator: overrides must be an object keyed by model id or provider/model');
  }
  for (const rawKey of Object.keys(overrides)) {
    const key = rawKey.trim().toLowerCase();
    if (key === '') throw new TypeError('createCostCalculator: an override has an empty model id');
    if (compiled.has(key)) {
      throw new TypeError(`createCostCalculator: override keys collide (model ids are case-insensitive): ${JSON.stringify(rawKey)}`);
    }
    const override = overrides[rawKey] as unknown;
    if (typeof override !== 'object' || override === null || Array.isArray(override)) {
      throw new TypeError(`createCostCalculator: override ${JSON.stringify(rawKey)} must be an object`);
    }
    const fields = override as Record<string, unknown>;
    for (const field of Object.keys(fields)) {
      if (!OVERRIDE_FIELDS.includes(field)) {
        throw new TypeError(
          `createCostCalculator: override ${JSON.stringify(rawKey)} has unknown field ${JSON.stringify(field)} ` +
            `(allowed: ${OVERRIDE_FIELDS.join(', ')})`,
        );
      }
    }
    const prices: ModelPrice = {
      input_mtok: requiredRate(rawKey, fields, 'inputPerMTok'),
      output_mtok: requiredRate(rawKey, fields, 'outputPerMTok'),
    };
    const cacheRead = optionalRate(rawKey, fields, 'cacheReadPerMTok');
    if (cacheRead !== undefined) prices.cache_read_mtok = cacheRead;
    const cacheWrite = optionalRate(rawKey, fields, 'cacheWritePerMTok');
    if (cacheWrite !== undefined) prices.cache_write_mtok = cacheWrite;
    compiled.set(key, Object.freeze(prices));
  }
  return compiled;
}

function requiredRate(key: string, fields: Record<string, unknown>, field: string): number {
  const rate = optionalRate(key, fields, field);
  if (rate === undefined) {
    throw new TypeError(`createCostCalculator: override ${JSON.stringify(key)} is missing ${field}`);
  }
  return rate;
}

function optionalRate(key: string, fields: Record<string, unknown>, field: string): number | undefined {
  const value = fields[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `createCostCalculator: override ${JSON.stringify(key)} has ${field}=${String(value)}; ` +
        'rates must be non-negative finite numbers (USD per million tokens)',
    );
  }
  return value;
}
