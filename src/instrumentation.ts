import { diag, trace, type Histogram, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { recordsMetrics } from './util/audit-meter';
import {
  InstrumentationBase,
  InstrumentationNodeModuleDefinition,
  InstrumentationNodeModuleFile,
  type InstrumentationConfig,
} from '@opentelemetry/instrumentation';
import { createContentHasher, type ContentHasher } from './audit/hashing';
import { createCostCalculator, type CostCalculator, type ModelPriceOverride } from './audit/cost';
import type { AuditedCall, AuditServices } from './core/audited-call';
import type { LlmAuditHooks } from './guardrails';
import { type ContentCipher } from './audit/content';
import { createSanitizer, type SanitizeMode, type SanitizerOptions } from './audit/sanitize';
import { processDefaults } from './config/process-defaults';
import { publishAuditServices } from './core/audit-client';
import { methodOptions, targetWrapper, wrappedByUs } from './core/patch';
import { checkShape, type ProviderPatch } from './core/provider';
import { anthropicPatch } from './instrumentations/anthropic';
import { bedrockRuntimePatch } from './instrumentations/bedrock-runtime';
import { openaiPatch } from './instrumentations/openai';
import { googleGenaiPatch } from './instrumentations/google-genai';
import { mistralPatch } from './instrumentations/mistral';
import { providerHostMap } from './instrumentations/provider-hosts';
import { vercelAi } from './instrumentations/vercel-ai';
import * as A from './semconv';
import { STREAM_OUTCOME } from './semconv';
import { PACKAGE_VERSION } from './version';


export interface LlmAuditInstrumentationConfig extends InstrumentationConfig {
  /**
   * Key for the HMAC-SHA256 content hashes. Default: `LLM_AUDIT_HASH_KEY`. Without a key the
   * hashes are plain SHA-256, which can be reversed by guessing short prompts; `null` says so
   * explicitly, whatever the environment holds.
   */
  hashKey?: string | Buffer | null;
  /** Names the key in every hash (`hmac-sha256:<keyId>:...`). Default: `LLM_AUDIT_HASH_KEY_ID` or a key fingerprint. */
  hashKeyId?: string;
  /** Prices (USD per million tokens) that win over the bundled price data, keyed by model or `provider/model`. */
  prices?: Record<string, ModelPriceOverride>;
  /**
   * Who receives calls sent to a host, as `gen_ai.provider.name` (and for pricing): `host` or
   * `host:port` to a provider name, e.g. `{ 'vllm.internal:8000': 'vllm' }`. Wins over the built-in
   * hosts and the client class. Default: `LLM_AUDIT_PROVIDER_HOSTS` (`host=name,...`).
   */
  providerHosts?: Record<string, string>;
  /** Which SDKs to patch. Default: all supported. */
  providers?: ProviderId[];
  /** Guardrail hooks run around every audited call (see docs/guardrails.md). */
  hooks?: LlmAuditHooks;
  /**
   * PII and secret detection in the request text (docs/sanitization.md): `detect` records
   * findings, `redact` also replaces them in what is sent. Default: `LLM_AUDIT_SANITIZE`, else off.
   */
  sanitize?: { mode: SanitizeMode } & SanitizerOptions;
  /**
   * Encrypted content capture (docs/content-encryption.md). Default: from `LLM_AUDIT_CONTENT`,
   * `LLM_AUDIT_CONTENT_KEY` and friends; `null` turns it off whatever the environment says.
   */
  content?: ContentCipher | null;
}

/**
 * The SDKs this package patches, by the id `providers` takes: the one table the ids come from.
 * `ai`: the Vercel AI SDK, whatever @ai-sdk provider its models come from (its exports are wrapped,
 * not prototypes).
 */
const PROVIDERS = {
  openai: openaiPatch,
  anthropic: anthropicPatch,
  'google-genai': googleGenaiPatch,
  mistral: mistralPatch,
  'bedrock-runtime': bedrockRuntimePatch,
  ai: vercelAi,
} satisfies Record<string, ProviderPatch | typeof vercelAi>;

export type ProviderId = keyof typeof PROVIDERS;

/** What `llm-audit config check` compares the installed SDKs with. */
export const PROVIDER_PATCHES: ReadonlyArray<Pick<ProviderPatch, 'moduleName' | 'needs' | 'tested' | 'testedRange'>> = Object.values(PROVIDERS);

/**
 * Audit spans for the OpenAI and Anthropic SDKs. Use it in `NodeSDK({ instrumentations: [...] })`
 * or with `registerInstrumentations`, or let `otel-llm-audit/register` set everything up.
 *
 * Configuration errors (a bad hash key, an invalid price table) throw from the constructor: an
 * audit trail that silently ran with the wrong key would be worse than an app that does not start.
 */
export class LlmAuditInstrumentation extends InstrumentationBase<LlmAuditInstrumentationConfig> {
  // `declare`: these are assigned from the base constructor (via _updateMetricInstruments), before
  // class field initialisers would run and reset them.
  declare private durationHistogram: Histogram;
  declare private tokenHistogram: Histogram;
  private readonly services: AuditServices;
  /** Set by `register`: the trace spans go to whatever tracer provider is global at call time. */
  private followsGlobal = false;
  private globalProvider: TracerProvider | undefined;
  private globalTracerCache: Tracer | undefined;

  constructor(config: LlmAuditInstrumentationConfig = {}) {
    super(A.INSTRUMENTATION_NAME, PACKAGE_VERSION, config);
    // What the options leave out comes from the process environment (src/config/process-defaults.ts);
    // `register` and startAudit(env) give every one of them, so their env is the only one read.
    const key = config.hashKey !== undefined ? { hashKey: config.hashKey ?? undefined, hashKeyId: config.hashKeyId } : processDefaults.hashKey();
    const hasher: ContentHasher = createContentHasher({ key: key.hashKey, keyId: key.hashKeyId });
    const cost: CostCalculator = createCostCalculator(config.prices);
    const mode = config.sanitize?.mode ?? processDefaults.sanitize();
    const { mode: _mode, ...sanitizerOptions } = config.sanitize ?? { mode };
    const sanitize = mode === 'off' ? undefined : { mode, sanitizer: createSanitizer(sanitizerOptions) };
    const self = this;
    this.services = {
      get tracer(): Tracer {
        return self.followsGlobal ? self.globalTracer() : self.tracer;
      },
      get durationHistogram(): Histogram {
        return self.durationHistogram;
      },
      get tokenHistogram(): Histogram {
        return self.tokenHistogram;
      },
      get metricsEnabled(): boolean {
        return recordsMetrics(self.durationHistogram);
      },
      hasher,
      cost,
      openCalls: new Set<AuditedCall>(),
      get hooks(): LlmAuditHooks | undefined {
        return self.getConfig().hooks;
      },
      sanitize,
      providerHosts: config.providerHosts === undefined ? processDefaults.providerHosts() : providerHostMap(config.providerHosts, {}),
      content: config.content === undefined ? processDefaults.content() : (config.content ?? undefined),
    };
    // auditClient() audits bundled SDK clients through these services (src/core/audit-client.ts).
    publishAuditServices(() => (this.isEnabled() ? this.services : undefined));
  }

  /**
   * The calls' trace spans go to the tracer provider that is global when each call is made, not
   * the one that was when the instrumentation was enabled: `register` runs before the
   * application's SDK starts, and that SDK may register its provider through another copy of
   * @opentelemetry/api, whose proxy the proxy tracer taken at startup would never delegate to.
   */
  followGlobalTracerProvider(): void {
    this.followsGlobal = true;
  }

  private globalTracer(): Tracer {
    const provider = trace.getTracerProvider();
    if (provider !== this.globalProvider || this.globalTracerCache === undefined) {
      this.globalProvider = provider;
      this.globalTracerCache = provider.getTracer(A.INSTRUMENTATION_NAME, PACKAGE_VERSION);
    }
    return this.globalTracerCache;
  }

  protected override _updateMetricInstruments(): void {
    this.durationHistogram = this.meter.createHistogram(A.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, {
      description: 'GenAI operation duration',
      unit: 's',
      advice: { explicitBucketBoundaries: A.OPERATION_DURATION_BUCKETS },
    });
    this.tokenHistogram = this.meter.createHistogram(A.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, {
      description: 'Number of input and output tokens used',
      unit: '{token}',
      advice: { explicitBucketBoundaries: A.TOKEN_USAGE_BUCKETS },
    });
  }

  protected init(): InstrumentationNodeModuleDefinition[] {
    const wanted = this.getConfig().providers ?? (Object.keys(PROVIDERS) as ProviderId[]);
    return wanted.map((id) => {
      const patch = PROVIDERS[id];
      return 'targets' in patch ? this.moduleDefinition(patch) : this.exportsDefinition(patch);
    });
  }

  /**
   * Ends the spans of calls still open (streams never read to the end): called before the SDK
   * flushes at shutdown, so that every started call is exported.
   */
  endOpenCalls(): void {
    for (const call of [...this.services.openCalls]) call.endStream(STREAM_OUTCOME.notConsumed);
  }

  /**
   * At shutdown: gives the calls still running up to `waitMs` to end by themselves (each ends its
   * span then), and records the rest as interrupted, so that every started call is exported and
   * none passes for a success it was not.
   */
  async settleOpenCalls(waitMs: number): Promise<void> {
    const open = this.services.openCalls;
    const deadline = Date.now() + waitMs;
    while (open.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const call of [...open]) call.interrupt();
  }

  override disable(): void {
    this.endOpenCalls();
    super.disable();
  }

  private moduleDefinition(patch: ProviderPatch): InstrumentationNodeModuleDefinition {
    const onLoad = (moduleExports: any, version: string | undefined, file?: string) => {
      if (!checkShape(patch, moduleExports, version, file)) return moduleExports;
      try {
        this.patchTargets(patch, moduleExports);
      } catch (error) {
        diag.error(`otel-llm-audit: patching ${patch.moduleName} ${version} failed; its calls are not audited`, error);
      }
      return moduleExports;
    };
    const onUnload = (moduleExports: any) => {
      for (const target of patch.targets(moduleExports)) {
        // Only our own wrapper, and only when it is the outermost: another instrumentation's
        // wrapper around ours stays, and ours then passes calls through (disabled).
        const fn = target.proto?.[target.method];
        if (typeof fn === 'function' && wrappedByUs(fn) && !wrappedByUs((fn as { __original?: unknown }).__original)) {
          this._unwrap(target.proto, target.method);
        }
      }
    };
    // '*': whether a version can be audited is decided by its shape (checkShape), and one that
    // cannot gets its warning rather than being skipped without a word by the base class.
    const files = (patch.files ?? []).map(
      (file) => new InstrumentationNodeModuleFile(`${patch.moduleName}/${file}`, ['*'], (exports: any, version?: string) => onLoad(exports, version, file), onUnload),
    );
    return new InstrumentationNodeModuleDefinition(patch.moduleName, ['*'], onLoad, onUnload, files);
  }

  /**
   * A module whose exported functions are wrapped (the Vercel AI SDK): the patch returns the
   * exports to use. Nothing to undo: disabled, the wrappers pass every call through.
   */
  private exportsDefinition(patch: typeof vercelAi): InstrumentationNodeModuleDefinition {
    const services = (): AuditServices | undefined => (this.isEnabled() ? this.services : undefined);
    return new InstrumentationNodeModuleDefinition(patch.moduleName, ['*'], (moduleExports, version) => {
      if (!checkShape(patch, moduleExports, version)) return moduleExports;
      try {
        return patch.patch(moduleExports, services);
      } catch (error) {
        diag.error(`otel-llm-audit: patching ${patch.moduleName} ${version} failed; its calls are not audited`, error);
        return moduleExports;
      }
    });
  }

  private patchTargets(patch: ProviderPatch, moduleExports: any): void {
    const services = (): AuditServices | undefined => (this.isEnabled() ? this.services : undefined);
    const options = methodOptions(patch);
    let patched = 0;
    for (const target of patch.targets(moduleExports)) {
      const proto = target.proto;
      if (!proto || typeof proto[target.method] !== 'function') continue; // helper absent in this version
      // Already ours (a second enable). Another instrumentation's wrapper is wrapped like any method.
      if (wrappedByUs(proto[target.method])) continue;
      const wrapper = targetWrapper(services, target, options);
      this._wrap(proto, target.method, wrapper as any);
      // Another instrumentation of the same method (the contrib OpenAI one, loaded by
      // auto-instrumentations-node after this package) would otherwise unwrap this wrapper before
      // wrapping the method itself, silently ending the audit. Not flagged as "wrapped", ours is
      // wrapped like any method instead; its span then becomes the call's trace span (see
      // core/audit-records.ts). Unwrapping ourselves still works (shimmer keeps __unwrap).
      Object.defineProperty(proto[target.method], '__wrapped', { value: false, configurable: true, writable: true });
      patched++;
    }
    if (patched === 0) {
      diag.warn(`otel-llm-audit: found nothing to patch in ${patch.moduleName}; its calls are not audited`);
    }
  }
}
