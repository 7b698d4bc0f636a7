import { context, diag, trace } from '@opentelemetry/api';
import { currentAction, withAction } from '../context';
import { observeApiPromise } from './api-promise';
import { AuditedCall, type AuditServices, type ServerInfo } from './audited-call';
import type { OperationSpec } from './types';

type Method = (this: any, ...args: any[]) => any;

export interface AuditedMethodOptions {
  /** Where the SDK client sends the request (for `server.address` / `server.port`). */
  server(resource: any): ServerInfo;
  /**
   * Runs the SDK's method. A provider can use it to adjust the SDK around the call (Anthropic:
   * keep its built-in span from doubling ours). Defaults to a plain call.
   */
  invoke?(original: Method, resource: any, args: any[]): unknown;
}

/**
 * Wraps an SDK method (e.g. `Completions.prototype.create`) so that each call becomes one audit
 * span. The wrapper never changes what the method returns or throws; a failure of the audit code
 * itself goes to the OTel diag logger and the SDK call proceeds as if uninstrumented.
 */
export function auditedMethod(
  services: () => AuditServices | undefined,
  spec: OperationSpec,
  options: AuditedMethodOptions,
): (original: Method) => Method {
  const invoke = options.invoke ?? ((original: Method, resource: any, args: any[]) => original.apply(resource, args));
  return (original) =>
    function auditedSdkMethod(this: any, ...args: any[]) {
      let call: AuditedCall;
      const parent = context.active();
      try {
        const shared = services();
        if (shared === undefined) return original.apply(this, args);
        const action = currentAction(parent) ?? spec.action;
        call = new AuditedCall(shared, spec, args[0], action, options.server(this), parent);
      } catch (error) {
        diag.error(`otel-llm-audit: could not start the audit span for ${spec.action}`, error);
        return original.apply(this, args);
      }
      let result: unknown;
      try {
        // The span is the active one while the SDK builds and sends the request, so HTTP spans
        // nest under it and the outgoing traceparent names it.
        result = context.with(trace.setSpan(parent, call.span), () => invoke(original, this, args));
      } catch (error) {
        call.fail(error);
        throw error;
      }
      try {
        return observeApiPromise(result, call);
      } catch (error) {
        diag.error(`otel-llm-audit: could not observe the result of ${spec.action}`, error);
        return result;
      }
    };
}

/**
 * Wraps an SDK helper built on an audited method (`messages.stream`, `chat.completions.parse`...):
 * the helper itself gets no span; it only names itself so that the span of the inner call carries
 * `llm_audit.action` = the helper the application called.
 */
export function namedHelper(action: string): (original: Method) => Method {
  return (original) =>
    function auditedSdkHelper(this: any, ...args: any[]) {
      return withAction(action, () => original.apply(this, args));
    };
}

const serverCache = new WeakMap<object, { baseURL: string; info: ServerInfo }>();

/** `server.address` and `server.port` from an SDK client's `baseURL`, parsed once per client. */
export function serverFromBaseURL(client: { baseURL?: unknown } | undefined): ServerInfo {
  if (client === undefined || typeof client.baseURL !== 'string') return {};
  const cached = serverCache.get(client);
  if (cached !== undefined && cached.baseURL === client.baseURL) return cached.info;
  let info: ServerInfo = {};
  try {
    const url = new URL(client.baseURL);
    const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : url.protocol === 'http:' ? 80 : undefined;
    info = { address: url.hostname, port };
  } catch {
    diag.debug(`otel-llm-audit: SDK baseURL is not a URL: ${client.baseURL}`);
  }
  serverCache.set(client, { baseURL: client.baseURL, info });
  return info;
}
