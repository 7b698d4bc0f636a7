/**
 * Finished spans to a JSON-safe document and back, for the spool (src/export/spool-file.ts).
 *
 * Why not OTLP/JSON: the spool re-sends through whatever OTLP exporter the environment configures
 * (http/protobuf, http/json, grpc), and those exporters take ReadableSpans. So the file keeps what a
 * ReadableSpan carries, field for field, and decoding gives back objects the exporters' own
 * transformer (otlp-transformer's sdkSpanToOtlpSpan) reads exactly as it read the originals.
 *
 * The layout follows OTLP's grouping (resource → scope → spans) so that each resource and scope is
 * written once per file and a reader of the file sees which service and library a span came from.
 *
 * Attribute values keep their OTLP type through JSON: integers and doubles stay numbers (JSON keeps
 * 1 and 1.5 apart, which is what the transformer's Number.isInteger test looks at), and the few
 * values JSON cannot hold are tagged objects: non-finite numbers, byte arrays, key-value maps.
 */
import type { Attributes, HrTime, Link, SpanContext, SpanKind, SpanStatus } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import type { tracing } from '@opentelemetry/sdk-node';
import { sdkResources } from './sdk-node-require';

type ReadableSpan = tracing.ReadableSpan;
type Resource = ReadableSpan['resource'];
type Scope = ReadableSpan['instrumentationScope'];

/** A JSON value standing for one attribute value; objects are always tags, never plain values. */
export type EncodedValue =
  | string
  | boolean
  | number
  | null
  | EncodedValue[]
  | { num: 'NaN' | 'Infinity' | '-Infinity' }
  | { bytes: string }
  | { kv: Record<string, EncodedValue> };

export type EncodedAttributes = Record<string, EncodedValue>;

export interface EncodedContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
  traceState?: string;
  isRemote?: boolean;
}

export interface EncodedSpan {
  name: string;
  kind: number;
  context: EncodedContext;
  parent?: EncodedContext;
  startTime: HrTime;
  endTime: HrTime;
  duration: HrTime;
  status: { code: number; message?: string };
  attributes: EncodedAttributes;
  events: { name: string; time: HrTime; attributes?: EncodedAttributes; droppedAttributesCount?: number }[];
  links: { context: EncodedContext; attributes?: EncodedAttributes; droppedAttributesCount?: number }[];
  droppedAttributesCount: number;
  droppedEventsCount: number;
  droppedLinksCount: number;
}

export interface EncodedScope {
  name: string;
  version?: string;
  schemaUrl?: string;
}

/** The body of a spool file: spans grouped by resource, then by instrumentation scope, as in OTLP. */
export interface EncodedBatch {
  resourceSpans: {
    resource: { attributes: EncodedAttributes; schemaUrl?: string };
    scopeSpans: { scope: EncodedScope; spans: EncodedSpan[] }[];
  }[];
}

/** Thrown by decodeBatch when the document is not a well-formed batch. */
export class SpanCodecError extends Error {}

export function encodeBatch(spans: readonly ReadableSpan[]): EncodedBatch {
  // Grouped by object identity, as the OTLP transformer does: spans of one provider share one
  // Resource object; scopes are told apart by name, version and schema URL.
  const byResource = new Map<Resource, Map<string, { scope: EncodedScope; spans: EncodedSpan[] }>>();
  for (const span of spans) {
    let scopes = byResource.get(span.resource);
    if (!scopes) byResource.set(span.resource, (scopes = new Map()));
    const scope = span.instrumentationScope;
    const key = `${scope.name}@${scope.version ?? ''}:${scope.schemaUrl ?? ''}`;
    let group = scopes.get(key);
    if (!group) scopes.set(key, (group = { scope: encodeScope(scope), spans: [] }));
    group.spans.push(encodeSpan(span));
  }
  return {
    resourceSpans: [...byResource].map(([resource, scopes]) => ({
      resource: {
        attributes: encodeAttributes(resource.attributes),
        ...(resource.schemaUrl ? { schemaUrl: resource.schemaUrl } : {}),
      },
      scopeSpans: [...scopes.values()],
    })),
  };
}

/**
 * ReadableSpan-shaped objects from a batch; spans of one resource group share one Resource object
 * (the exporters group by identity). Throws SpanCodecError on anything malformed.
 */
export function decodeBatch(batch: unknown): ReadableSpan[] {
  const doc = batch as EncodedBatch;
  if (!isObject(doc) || !Array.isArray(doc.resourceSpans)) throw new SpanCodecError('no resourceSpans array');
  const out: ReadableSpan[] = [];
  for (const rs of doc.resourceSpans) {
    if (!isObject(rs) || !isObject(rs.resource) || !Array.isArray(rs.scopeSpans)) throw new SpanCodecError('malformed resourceSpans entry');
    const resource = sdkResources().resourceFromAttributes(
      decodeAttributes(rs.resource.attributes) as Attributes,
      typeof rs.resource.schemaUrl === 'string' ? { schemaUrl: rs.resource.schemaUrl } : undefined,
    );
    for (const ss of rs.scopeSpans) {
      if (!isObject(ss) || !isObject(ss.scope) || typeof ss.scope.name !== 'string' || !Array.isArray(ss.spans)) {
        throw new SpanCodecError('malformed scopeSpans entry');
      }
      const scope: Scope = {
        name: ss.scope.name,
        ...(typeof ss.scope.version === 'string' ? { version: ss.scope.version } : {}),
        ...(typeof ss.scope.schemaUrl === 'string' ? { schemaUrl: ss.scope.schemaUrl } : {}),
      };
      for (const span of ss.spans) out.push(decodeSpan(span, resource, scope));
    }
  }
  return out;
}

function encodeScope(scope: Scope): EncodedScope {
  return {
    name: scope.name,
    ...(scope.version !== undefined ? { version: scope.version } : {}),
    ...(scope.schemaUrl !== undefined ? { schemaUrl: scope.schemaUrl } : {}),
  };
}

function encodeSpan(span: ReadableSpan): EncodedSpan {
  const encoded: EncodedSpan = {
    name: span.name,
    kind: span.kind,
    context: encodeContext(span.spanContext()),
    startTime: span.startTime,
    endTime: span.endTime,
    duration: span.duration,
    status: { code: span.status.code, ...(span.status.message !== undefined ? { message: span.status.message } : {}) },
    attributes: encodeAttributes(span.attributes),
    events: span.events.map((event) => ({
      name: event.name,
      time: event.time,
      ...(event.attributes ? { attributes: encodeAttributes(event.attributes) } : {}),
      ...(event.droppedAttributesCount ? { droppedAttributesCount: event.droppedAttributesCount } : {}),
    })),
    links: span.links.map((link) => ({
      context: encodeContext(link.context),
      ...(link.attributes ? { attributes: encodeAttributes(link.attributes) } : {}),
      ...(link.droppedAttributesCount ? { droppedAttributesCount: link.droppedAttributesCount } : {}),
    })),
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
  if (span.parentSpanContext) encoded.parent = encodeContext(span.parentSpanContext);
  return encoded;
}

function encodeContext(context: SpanContext): EncodedContext {
  const traceState = context.traceState?.serialize();
  return {
    traceId: context.traceId,
    spanId: context.spanId,
    traceFlags: context.traceFlags,
    ...(traceState ? { traceState } : {}),
    ...(context.isRemote !== undefined ? { isRemote: context.isRemote } : {}),
  };
}

function encodeAttributes(attributes: Attributes): EncodedAttributes {
  const out: EncodedAttributes = {};
  for (const key of Object.keys(attributes)) {
    const value = attributes[key];
    // An undefined attribute is dropped by the OTLP transformer's toAnyValue too (it becomes {}).
    if (value !== undefined) out[key] = encodeValue(value);
  }
  return out;
}

function encodeValue(value: unknown): EncodedValue {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : { num: String(value) as 'NaN' | 'Infinity' | '-Infinity' };
  }
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array) return { bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (Array.isArray(value)) return value.map(encodeValue);
  if (typeof value === 'object') {
    const kv: Record<string, EncodedValue> = {};
    for (const [k, v] of Object.entries(value)) kv[k] = encodeValue(v);
    return { kv };
  }
  return null; // functions, symbols, bigints: not attribute values; the transformer sends {} for them
}

function decodeSpan(raw: unknown, resource: Resource, instrumentationScope: Scope): ReadableSpan {
  const span = raw as EncodedSpan;
  if (!isObject(span) || typeof span.name !== 'string' || typeof span.kind !== 'number' || !isObject(span.status)) {
    throw new SpanCodecError('malformed span');
  }
  const context = decodeContext(span.context);
  const parentSpanContext = span.parent === undefined ? undefined : decodeContext(span.parent);
  if (!Array.isArray(span.events) || !Array.isArray(span.links)) throw new SpanCodecError('malformed span events or links');
  const links: Link[] = span.links.map((link) => ({
    context: decodeContext(link.context),
    ...(link.attributes ? { attributes: decodeAttributes(link.attributes) as Attributes } : {}),
    ...(link.droppedAttributesCount ? { droppedAttributesCount: link.droppedAttributesCount } : {}),
  }));
  const status: SpanStatus = { code: span.status.code, ...(typeof span.status.message === 'string' ? { message: span.status.message } : {}) };
  return {
    name: span.name,
    kind: span.kind as SpanKind,
    spanContext: () => context,
    ...(parentSpanContext ? { parentSpanContext } : {}),
    startTime: hrTime(span.startTime),
    endTime: hrTime(span.endTime),
    duration: hrTime(span.duration),
    status,
    attributes: decodeAttributes(span.attributes) as Attributes,
    links,
    events: span.events.map((event) => ({
      name: String(event.name),
      time: hrTime(event.time),
      ...(event.attributes ? { attributes: decodeAttributes(event.attributes) as Attributes } : {}),
      ...(event.droppedAttributesCount ? { droppedAttributesCount: event.droppedAttributesCount } : {}),
    })),
    ended: true,
    resource,
    instrumentationScope,
    droppedAttributesCount: Number(span.droppedAttributesCount) || 0,
    droppedEventsCount: Number(span.droppedEventsCount) || 0,
    droppedLinksCount: Number(span.droppedLinksCount) || 0,
  };
}

function decodeContext(raw: unknown): SpanContext {
  const context = raw as EncodedContext;
  if (!isObject(context) || typeof context.traceId !== 'string' || typeof context.spanId !== 'string' || typeof context.traceFlags !== 'number') {
    throw new SpanCodecError('malformed span context');
  }
  return {
    traceId: context.traceId,
    spanId: context.spanId,
    traceFlags: context.traceFlags,
    ...(typeof context.traceState === 'string' ? { traceState: new TraceState(context.traceState) } : {}),
    ...(typeof context.isRemote === 'boolean' ? { isRemote: context.isRemote } : {}),
  };
}

function decodeAttributes(raw: unknown): Record<string, unknown> {
  if (!isObject(raw)) throw new SpanCodecError('malformed attributes');
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) out[key] = decodeValue(value as EncodedValue);
  return out;
}

function decodeValue(value: EncodedValue): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(decodeValue);
  if ('num' in value) return Number(value.num);
  if ('bytes' in value) return new Uint8Array(Buffer.from(value.bytes, 'base64'));
  if ('kv' in value && isObject(value.kv)) {
    const kv: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value.kv)) kv[k] = decodeValue(v);
    return kv;
  }
  throw new SpanCodecError('unknown tagged attribute value');
}

function hrTime(raw: unknown): HrTime {
  if (!Array.isArray(raw) || raw.length !== 2 || typeof raw[0] !== 'number' || typeof raw[1] !== 'number') {
    throw new SpanCodecError('malformed time');
  }
  return [raw[0], raw[1]];
}

function isObject(value: unknown): value is Record<string, any> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
