/**
 * `auditClient(client)`: audits one SDK client instance exactly as the module patch would, for apps
 * in which nothing `require`s the SDK package (esbuild, webpack, Turbopack bundles that inline
 * `openai` or `@anthropic-ai/sdk`, so the instrumentation's module hook never sees it).
 *
 * The audit itself (tracer, key, prices, hooks, sanitizer, content capture) belongs to the running
 * instrumentation: the instrumentation publishes its services in a process-global slot, and the
 * wrappers installed here read that slot at each call. The slot is keyed with `Symbol.for`, so a
 * bundle that inlined its own copy of this package still finds the services of the copy that
 * `otel-llm-audit/register` started.
 */
import { diag } from '@opentelemetry/api';
import { anthropicPatch } from '../instrumentations/anthropic';
import { bedrockRuntimePatch } from '../instrumentations/bedrock-runtime';
import { openaiPatch } from '../instrumentations/openai';
import { googleGenaiPatch } from '../instrumentations/google-genai';
import { mistralPatch } from '../instrumentations/mistral';
import type { AuditServices } from './audited-call';
import { methodOptions, targetWrapper, wrappedByUs } from './patch';
import { checkShape, type ProviderPatch } from './provider';
import { LlmAuditUnavailableError } from '../audit/failure-policy';

/** What the instrumentation publishes: its services while it is enabled, undefined otherwise. */
export type AuditServicesSource = () => AuditServices | undefined;

const SLOT = Symbol.for('otel-llm-audit.services');

/**
 * Called by the instrumentation when it is constructed: from then on auditClient() wrappers audit
 * through it. A later instrumentation replaces an earlier one (one audit setup per process).
 */
export function publishAuditServices(source: AuditServicesSource): void {
  (globalThis as Record<symbol, unknown>)[SLOT] = source;
}

function publishedServices(): AuditServices | undefined {
  const source = (globalThis as Record<symbol, unknown>)[SLOT];
  return typeof source === 'function' ? (source as AuditServicesSource)() : undefined;
}

let warnedNotStarted = false;

/**
 * Said once per process, on stderr and not only through diag: a client that the application asked
 * to have audited while no audit is running would otherwise make calls that are silently missing.
 */
function warnNotStarted(): void {
  if (warnedNotStarted) return;
  warnedNotStarted = true;
  const message =
    'otel-llm-audit: auditClient(): the audit instrumentation is not started in this process, so the calls of this client are NOT audited. ' +
    'Start it first: node --require otel-llm-audit/register (or --import), instrumentation.ts with otel-llm-audit/next, or NodeSDK with LlmAuditInstrumentation.';
  diag.error(message);
  process.stderr.write(`${message}\n`);
}

/** The resource objects of a client and the provider they belong to, shaped like the module's exports. */
function shapeOf(client: any): { patch: ProviderPatch; resources: object[]; exportsLike: object } | undefined {
  const completions = client?.chat?.completions;
  if (typeof completions?.create === 'function') {
    const resources = [completions, client.responses, client.embeddings].filter((r) => r !== undefined && r !== null);
    return {
      patch: openaiPatch,
      resources,
      // `prototype`: the client's own, where ProviderPatch.needs looks for `post`.
      exportsLike: {
        Chat: { Completions: completions.constructor },
        Responses: client.responses?.constructor,
        Embeddings: client.embeddings?.constructor,
        prototype: Object.getPrototypeOf(client),
      },
    };
  }
  if (typeof client?.messages?.create === 'function') {
    const beta = client.beta?.messages;
    return {
      patch: anthropicPatch,
      resources: [client.messages, client.messages.batches, beta, beta?.batches].filter((r) => r !== undefined && r !== null),
      // The Messages classes carry their Batches class (`Messages.Batches`), as on the main export.
      exportsLike: { Messages: client.messages.constructor, Beta: { Messages: beta?.constructor }, prototype: Object.getPrototypeOf(client) },
    };
  }
  // An AWS SDK v3 Bedrock Runtime client (BedrockRuntimeClient, or the aggregated BedrockRuntime):
  // its calls go through send(command); commands are told apart by their class names.
  if (typeof client?.send === 'function' && client?.config?.serviceId === 'Bedrock Runtime') {
    return { patch: bedrockRuntimePatch, resources: [client], exportsLike: { BedrockRuntimeClient: client.constructor } };
  }
  // @google/genai: the model calls (chats go through them, named by their record's action).
  if (typeof client?.models?.generateContentInternal === 'function') {
    return { patch: googleGenaiPatch, resources: [client.models], exportsLike: { Models: client.models.constructor } };
  }
  if (typeof client?.chat?.complete === 'function' && typeof client?.embeddings?.create === 'function') {
    return { patch: mistralPatch, resources: [client.chat, client.embeddings], exportsLike: { Mistral: client.constructor } };
  }
  return undefined;
}

/** The SDK version from the client's user agent (`OpenAI/JS 6.49.0`), when it tells. */
function versionOf(client: any): string | undefined {
  try {
    return /\/JS ([\w.+-]+)/.exec(String(client.getUserAgent?.()))?.[1];
  } catch {
    return undefined;
  }
}

const audited = new WeakSet<object>();

/**
 * Audits the calls made through `client` (an `OpenAI`, `AzureOpenAI`, `Anthropic`, `GoogleGenAI`,
 * `Mistral` or AWS `BedrockRuntimeClient` / `BedrockRuntime` instance) and
 * returns the same client. Each call becomes one audit span, as with the module patch: same
 * attributes, same hooks, same guarantees. A no-op on a client whose class the instrumentation has
 * already patched (no second span), on a client audited before, and on an object that is not a
 * supported client (said through diag). When no audit instrumentation is running, says so once on
 * stderr; the client then works unaudited until one is started.
 */
export function auditClient<T>(client: T): T {
  try {
    const shape = shapeOf(client);
    if (shape === undefined) {
      diag.error('otel-llm-audit: auditClient() was given an object that is not an OpenAI, Anthropic, GoogleGenAI, Mistral or Bedrock Runtime client; nothing is audited');
      return client;
    }
    if (audited.has(client as object)) return client;
    if (!checkShape(shape.patch, shape.exportsLike, versionOf(client))) return client;
    audited.add(client as object);
    if (publishedServices() === undefined) warnNotStarted();
    const services = (): AuditServices | undefined => {
      const shared = publishedServices();
      if (shared === undefined) warnNotStarted();
      return shared;
    };
    const { patch } = shape;
    const options = methodOptions(patch);
    for (const target of patch.targets(shape.exportsLike)) {
      const proto = target.proto;
      if (!proto || typeof proto[target.method] !== 'function') continue; // helper absent in this version
      // The class is patched (the SDK was loaded through require/import): it is audited already.
      if (wrappedByUs(proto[target.method])) continue;
      const resource = shape.resources.find((r) => Object.getPrototypeOf(r) === proto);
      if (resource === undefined) continue;
      const wrap = targetWrapper(services, target, options);
      // An own property of this resource object: other clients of the same class are left alone, and
      // the original is the prototype's method, so a patch installed later cannot double the span.
      Object.defineProperty(resource, target.method, { value: wrap(proto[target.method]), configurable: true, writable: true, enumerable: false });
    }
  } catch (error) {
    // LLM_AUDIT_ON_FAILURE=block: a client that cannot be audited must not be used.
    if (error instanceof LlmAuditUnavailableError) throw error;
    diag.error('otel-llm-audit: auditClient() failed; this client is not audited', error);
  }
  return client;
}
