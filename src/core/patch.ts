import { context, diag, trace } from '@opentelemetry/api';
import { currentAction, withAction } from '../context';
import { ensureContextManager } from '../util/context-manager';
import { BlockSignal, LlmRequestBlockedError, type LlmAuditHooks } from '../guardrails';
import { stainlessAdapter } from './api-promise';
import { promiseAdapter, type SdkAdapter } from './sdk-adapter';
import { sanitizeRequest, type SanitizeResult } from '../audit/sanitize';
import { refusedWhileAuditUnavailable } from '../audit/failure-policy';
import { AuditedCall, IN_AUDITED_CALL, IN_HOOK, type AuditServices, type ServerInfo } from './audited-call';
import { runInAuditedCall } from '../audit/unaudited/audited-call-marker';
import { errorType, loggableError } from '../audit/redact';
import { snapshotRequest } from './snapshot';
import type { PatchTarget, ProviderPatch } from './provider';
import { endpointOf } from '../instrumentations/provider-hosts';
import type { OperationSpec } from './types';

type Method = (this: any, ...args: any[]) => any;

/** Marks this package's wrappers, to tell them from other instrumentations' wrappers of the same method. */
const OURS = Symbol.for('otel-llm-audit.wrapper');

export function ours<T extends Method>(wrapper: T): T {
  Object.defineProperty(wrapper, OURS, { value: true });
  return wrapper;
}

/**
 * Whether this package already wrapped `fn`: it is our wrapper, or another instrumentation's
 * wrapper around ours (shimmer keeps the wrapped function in `__original`).
 */
export function wrappedByUs(fn: unknown): boolean {
  let f: any = fn;
  for (let depth = 0; typeof f === 'function' && depth < 16; depth++) {
    if (f[OURS] === true) return true;
    f = f.__original;
  }
  return false;
}

export interface AuditedMethodOptions {
  /** Where the SDK client sends the request (`server.address` / `server.port`) and to whom. */
  server(resource: any): ServerInfo;
  /**
   * How this SDK's results are observed and its requests held (./sdk-adapter.ts). Default: the
   * Stainless adapter over `client`.
   */
  adapter?: SdkAdapter;
  /** The SDK client behind a resource object (`resource._client`), for the default adapter. */
  client?(resource: any): any;
  /**
   * Runs the SDK's method. A provider can use it to adjust the SDK around the call (Anthropic:
   * keep its built-in span from doubling ours). Defaults to a plain call.
   */
  invoke?(original: Method, resource: any, args: any[]): unknown;
}

/** The options {@link auditedMethod} needs for one provider's SDK (the patch and auditClient() alike). */
export function methodOptions(patch: ProviderPatch): AuditedMethodOptions {
  return {
    server: patch.server ?? ((resource: any) => endpointOf(patch.client(resource))),
    adapter: patch.adapter ?? stainlessAdapter(patch.client),
    invoke: patch.invoke,
  };
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
  const adapter = options.adapter ?? stainlessAdapter(options.client ?? (() => undefined));
  return (original) =>
    ours(function auditedSdkMethod(this: any, ...args: any[]) {
      let call: AuditedCall;
      let gate: Promise<void> | undefined;
      ensureContextManager();
      const parent = context.active();
      if (parent.getValue(IN_AUDITED_CALL) === true) return original.apply(this, args);
      try {
        const shared = services();
        if (shared === undefined) return original.apply(this, args);
        args = withSnapshot(args);
        const action = currentAction(parent) ?? spec.action;
        // Sanitize first: in redact mode the redacted copy is what is sent, hashed and shown to hooks.
        const sanitized = shared.sanitize === undefined ? undefined : sanitizeForCall(shared.sanitize, spec, args[0]);
        if (sanitized?.result !== undefined && sanitized.result.params !== args[0]) args = [sanitized.result.params, ...args.slice(1)];
        call = new AuditedCall(shared, spec, args[0], action, options.server(this), parent);
        if (sanitized?.result !== undefined) call.recordSanitization(shared.sanitize!.mode, sanitized.result);
        if (sanitized?.failed !== undefined) gate = Promise.reject(sanitizerBlocked(call, sanitized.failed));
        // LLM_AUDIT_ON_FAILURE=block: no call goes out while its audit record cannot be written.
        gate ??= refusedWhileAuditUnavailable();
        const beforeRequest = parent.getValue(IN_HOOK) === true ? undefined : shared.hooks?.beforeRequest;
        if (gate === undefined && beforeRequest !== undefined) gate = runBeforeRequest(call, beforeRequest, args[0]);
      } catch (error) {
        diag.error(`otel-llm-audit: could not start the audit span for ${spec.action}`, error);
        return original.apply(this, args);
      }
      let result: unknown;
      let observer = adapter;
      try {
        // The span is the active one while the SDK builds and sends the request, so HTTP spans
        // nest under it and the outgoing traceparent names it.
        const send = () => invoke(original, this, args);
        const run = (): unknown => {
          if (gate === undefined) return send();
          const held = adapter.hold?.(gate, send, this);
          if (held !== undefined) return held.result;
          // Fail closed: this SDK's request cannot wait for the gate, so it is not sent at all.
          observer = promiseAdapter;
          return refuseUnheld(call, gate);
        };
        // Marked as audited, so that the unaudited-request watcher lets its HTTP requests pass.
        result = runInAuditedCall(() => context.with(trace.setSpan(parent, call.traceSpan).setValue(IN_AUDITED_CALL, true), run));
      } catch (error) {
        call.fail(error);
        throw error;
      }
      try {
        return observer.observe(result, call);
      } catch (error) {
        diag.error(`otel-llm-audit: could not observe the result of ${spec.action}`, error);
        return result;
      }
    });
}

/**
 * The call of an SDK whose request cannot be held for its gate: a rejected promise, with the
 * gate's own error when it rejects (a block, a failed redaction, the audit unavailable), else an
 * LlmRequestBlockedError saying why the call was refused even though the hook let it pass.
 */
function refuseUnheld(call: AuditedCall, gate: Promise<void>): Promise<never> {
  return gate.then(() => {
    const guardrail = { name: 'otel-llm-audit', action: 'blocked' as const, category: 'request_not_holdable' };
    call.addGuardrail(guardrail);
    diag.error('otel-llm-audit: this SDK request cannot be held until the beforeRequest hook has decided; it was refused (fail closed)');
    throw new LlmRequestBlockedError(
      'this SDK request cannot be held until the beforeRequest hook has decided, so it was refused rather than sent unguarded (make the hook synchronous, or use an SDK version this package can hold)',
      call.requestId,
      guardrail,
    );
  });
}

/**
 * The call's arguments with the params read once (./snapshot.ts): the copy is sent, hashed,
 * scanned and shown to hooks. A getter that throws while being copied, or a cycle, leaves the
 * arguments as they were, so the SDK meets (and reports) the failure as it would have without the
 * audit.
 */
function withSnapshot(args: any[]): any[] {
  let params: unknown;
  try {
    params = snapshotRequest(args[0]);
  } catch (error) {
    // Only the type: the getter's message is the app's and may quote what it would have returned.
    diag.debug(`otel-llm-audit: the request could not be copied (${errorType(error)}: a getter threw, or a cycle); it is read where it is`);
    return args;
  }
  return params === args[0] ? args : [params, ...args.slice(1)];
}

/**
 * Scans (and in redact mode rewrites) the request text. A sanitizer that fails (a user pattern or
 * hook that throws) fails open in detect mode, reported through diag; in redact mode it fails
 * closed: sending text that the operator asked to have redacted would be the worse failure.
 */
export function sanitizeForCall(
  settings: NonNullable<AuditServices['sanitize']>,
  spec: OperationSpec,
  params: unknown,
): { result?: SanitizeResult; failed?: unknown } | undefined {
  try {
    return { result: sanitizeRequest(spec.requestKind, params, settings.sanitizer, settings.mode) };
  } catch (error) {
    diag.error(`otel-llm-audit: sanitization failed for ${spec.action}: ${loggableError(error, params)}`);
    return settings.mode === 'redact' ? { failed: error } : undefined;
  }
}

export function sanitizerBlocked(call: AuditedCall, error: unknown): LlmRequestBlockedError {
  const guardrail = { name: 'sanitizer', action: 'blocked' as const, category: 'sanitization_failed' };
  call.addGuardrail(guardrail);
  // The reason reaches the app as is (in-process); the span records it scrubbed (AuditedCall.fail).
  return new LlmRequestBlockedError(`redaction failed (${(error as Error)?.message ?? String(error)}); the request was not sent`, call.requestId, guardrail);
}

/**
 * Runs the beforeRequest hook. Returns undefined when the call may go at once, or a gate: a
 * promise that the request must wait for, which rejects with LlmRequestBlockedError when the hook
 * blocked the call. A hook that fails for another reason is reported and the call goes on.
 */
export function runBeforeRequest(call: AuditedCall, hook: NonNullable<LlmAuditHooks['beforeRequest']>, params: unknown): Promise<void> | undefined {
  const blocked = (signal: BlockSignal): LlmRequestBlockedError => {
    // The decision carries its reason into the record (scrubbed there); the application gets it as given.
    call.addGuardrail({ ...signal.guardrail, reason: signal.reason });
    return new LlmRequestBlockedError(signal.reason, call.requestId, signal.guardrail);
  };
  const broken = (error: unknown): undefined => {
    diag.error(`otel-llm-audit: the beforeRequest hook threw; the call goes on unguarded: ${loggableError(error, params)}`);
    return undefined;
  };
  let outcome: unknown;
  try {
    outcome = call.runHook(() => hook(call.request(params)));
  } catch (error) {
    return error instanceof BlockSignal ? Promise.reject(blocked(error)) : broken(error);
  }
  if (typeof (outcome as PromiseLike<unknown> | undefined)?.then !== 'function') return undefined;
  return Promise.resolve(outcome).then(
    () => undefined,
    (error: unknown) => {
      if (error instanceof BlockSignal) throw blocked(error);
      return broken(error);
    },
  );
}

/** What {@link routedMethod} needs to know about one SDK method that carries several operations. */
export interface MethodRoute {
  /**
   * The operation of this call, its params and, for a Node-style callback call, the callback; or
   * undefined when the call is not one to audit (it then passes through untouched).
   */
  pick(args: any[], resource: any): { spec: OperationSpec; params: unknown; callback?: (error: unknown, result?: unknown) => void } | undefined;
  /** Calls the SDK method with `params` (possibly redacted) in place of those pick() read, returning its promise. */
  send(original: Method, resource: any, args: any[], params: unknown): unknown;
  /** The options of one operation (its adapter: where a stream sits in the result). */
  options(spec: OperationSpec): AuditedMethodOptions;
  /**
   * True for a call that sends no content (polling a job by id): it makes no record, and its
   * requests are marked as an audited call's, so the unaudited-request watcher neither reports
   * nor refuses them.
   */
  contentFree?(args: any[]): boolean;
}

/**
 * Wraps an SDK method that carries several operations, such as the AWS SDK's `client.send(command)`:
 * each call is audited as the operation `route` picks, exactly as {@link auditedMethod} audits a
 * method of its own; calls of other operations pass through. A callback call gets its result through
 * the callback, as before, and the method returns undefined.
 */
export function routedMethod(services: () => AuditServices | undefined, route: MethodRoute): (original: Method) => Method {
  return (original) => {
    const audited = new Map<OperationSpec, Method>();
    const inner = function (this: any, params: unknown, args: any[]) {
      return route.send(original, this, args, params);
    };
    return ours(function routedSdkMethod(this: any, ...args: any[]) {
      let picked: ReturnType<MethodRoute['pick']>;
      try {
        picked = services() === undefined ? undefined : route.pick(args, this);
      } catch (error) {
        diag.error('otel-llm-audit: could not tell which operation this SDK call is; it is not audited', error);
      }
      if (picked === undefined) {
        let contentFree = false;
        try {
          contentFree = services() !== undefined && route.contentFree?.(args) === true;
        } catch (error) {
          diag.error('otel-llm-audit: could not tell whether this SDK call sends content', error);
        }
        return contentFree ? runInAuditedCall(() => original.apply(this, args)) : original.apply(this, args);
      }
      let method = audited.get(picked.spec);
      if (method === undefined) {
        method = auditedMethod(services, picked.spec, route.options(picked.spec))(inner);
        audited.set(picked.spec, method);
      }
      const result = method.call(this, picked.params, args);
      const callback = picked.callback;
      if (callback === undefined) return result;
      // As the SDK's own callback path does: an exception thrown by the callback is not turned
      // into an unhandled rejection.
      Promise.resolve(result)
        .then(
          (value) => callback(null, value),
          (error: unknown) => callback(error),
        )
        .catch(() => undefined);
      return undefined;
    });
  };
}

/**
 * The wrapper of one patch target: an audited operation, a method carrying several operations, a
 * provider's own wrapper, or a helper that only names itself.
 */
export function targetWrapper(services: () => AuditServices | undefined, target: PatchTarget, options: AuditedMethodOptions): (original: Method) => Method {
  if (target.spec !== undefined) return auditedMethod(services, target.spec, options);
  if (target.route !== undefined) return routedMethod(services, target.route);
  if (target.wrap !== undefined) return target.wrap(services, options);
  return namedHelper(target.helper ?? target.method);
}

/**
 * Wraps an SDK helper built on an audited method (`messages.stream`, `chat.completions.parse`...):
 * the helper itself gets no span; it only names itself so that the span of the inner call carries
 * `llm_audit.action` = the helper the application called.
 */
export function namedHelper(action: string): (original: Method) => Method {
  return (original) =>
    ours(function auditedSdkHelper(this: any, ...args: any[]) {
      return withAction(action, () => original.apply(this, args));
    });
}
