// What is measured: the SDKs, the call shapes and, per SDK, the configurations.

/** The SDK clients measured. `resolveFrom` is the directory `openai` / `@anthropic-ai/sdk` is required from. */
export const SDKS = {
  openai6: { provider: 'openai', label: 'openai 6 (repo)', resolveFrom: '.' },
  openai5: { provider: 'openai', label: 'openai 5 (previous major)', resolveFrom: 'test/sdk-versions/openai-5' },
  anthropic: { provider: 'anthropic', label: '@anthropic-ai/sdk 1.x', resolveFrom: '.' },
};

export const MODELS = { openai: 'gpt-4o-mini', anthropic: 'claude-3-5-haiku-20241022' };

/**
 * kind: `baseline` (no OpenTelemetry), `reference` (OTel without an LLM instrumentation: the SDK
 * alone, or the hand-written span that is the floor), `ours`, or `peer`.
 * `anthropicTelemetry`: whether the Anthropic client keeps its own built-in spans (the
 * `openTelemetry` client option left at its default) or is built with `openTelemetry: false`.
 */
export const CONFIGS = {
  baseline: { kind: 'baseline', otel: false, providers: ['openai', 'anthropic'], anthropicTelemetry: false },
  'sdk-only': { kind: 'reference', otel: true, providers: ['openai', 'anthropic'], anthropicTelemetry: false },
  'hand-span': { kind: 'reference', otel: true, providers: ['openai', 'anthropic'], anthropicTelemetry: false },
  'otel-llm-audit': { kind: 'ours', otel: true, providers: ['openai', 'anthropic'], anthropicTelemetry: true },
  'otel-contrib': {
    kind: 'peer',
    otel: true,
    providers: ['openai'],
    package: '@opentelemetry/instrumentation-openai',
    exportName: 'OpenAIInstrumentation',
  },
  'traceloop-openai': {
    kind: 'peer',
    otel: true,
    providers: ['openai'],
    package: '@traceloop/instrumentation-openai',
    exportName: 'OpenAIInstrumentation',
  },
  'openinference-openai': {
    kind: 'peer',
    otel: true,
    providers: ['openai'],
    package: '@arizeai/openinference-instrumentation-openai',
    exportName: 'OpenAIInstrumentation',
  },
  'anthropic-builtin': { kind: 'peer', otel: true, providers: ['anthropic'], anthropicTelemetry: true },
  'traceloop-anthropic': {
    kind: 'peer',
    otel: true,
    providers: ['anthropic'],
    package: '@traceloop/instrumentation-anthropic',
    exportName: 'AnthropicInstrumentation',
    anthropicTelemetry: false,
  },
  'openinference-anthropic': {
    kind: 'peer',
    otel: true,
    providers: ['anthropic'],
    package: '@arizeai/openinference-instrumentation-anthropic',
    exportName: 'AnthropicInstrumentation',
    anthropicTelemetry: false,
  },
};

export function configsFor(sdk) {
  const provider = SDKS[sdk].provider;
  return Object.keys(CONFIGS).filter((name) => CONFIGS[name].providers.includes(provider));
}

/** Conversation sizes of the scaling series (plain calls, openai 6, baseline vs otel-llm-audit). */
export const SCALING_SIZES = [1 << 10, 10 << 10, 100 << 10, 1 << 20];
export const DEFAULT_SIZE = 10 << 10;
