/**
 * Decoding OTLP/HTTP trace export requests (ExportTraceServiceRequest) in both encodings the OTLP
 * specification defines, into one small span model, and encoding the answers.
 *
 * - `application/x-protobuf`: decoded with the protobufjs code the OpenTelemetry JS project
 *   generated from opentelemetry-proto (`build/src/generated/root.js` of
 *   @opentelemetry/otlp-transformer 0.214.0, installed under the alias
 *   `otlp-transformer-protobufjs`; docs/server.md says why that version).
 * - `application/json`: the OTLP JSON mapping of the same messages (protobuf's canonical JSON
 *   mapping, except that trace and span ids are hex strings): lowerCamelCase or original field
 *   names, enums as integers, 64-bit integers as decimal strings or numbers.
 *
 * A body that cannot be decoded, or whose structure has the wrong types, is a {@link MalformedBody}
 * (HTTP 400). A span whose ids are missing or malformed is rejected on its own (partial success).
 */
import type { AttributeValue, Attributes } from '@opentelemetry/api';

export class MalformedBody extends Error {
  override readonly name = 'MalformedBody';
}

export interface DecodedEvent {
  name: string;
  timeUnixNano: bigint;
  attributes: Attributes;
}

export interface DecodedSpan {
  /** 32 lowercase hex digits, or null when missing or malformed (the span is then rejected). */
  traceId: string | null;
  /** 16 lowercase hex digits, or null when missing or malformed. */
  spanId: string | null;
  name: string;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Attributes;
  events: DecodedEvent[];
  /** Status code: 0 unset, 1 ok, 2 error (the proto enum and @opentelemetry/api agree). */
  statusCode: number;
  /** The attributes of the span's resource (service.name, deployment.environment.name...), shared by the spans of one resourceSpans entry. */
  resource: Attributes;
}

/** Nesting of array / kvlist attribute values beyond this is dropped (the ledger keeps scalars and flat arrays). */
const MAX_VALUE_DEPTH = 8;

// --- Protobuf ------------------------------------------------------------------------------------

/* The generated module is untyped (its .d.ts says `Root`); these are the parts read here. */
interface PbLong {
  low: number;
  high: number;
  unsigned: boolean;
}
type PbInt = number | PbLong | string | null | undefined;
interface PbAnyValue {
  stringValue?: string | null;
  boolValue?: boolean | null;
  intValue?: PbInt;
  doubleValue?: number | null;
  arrayValue?: { values?: PbAnyValue[] | null } | null;
  kvlistValue?: { values?: PbKeyValue[] | null } | null;
  bytesValue?: Uint8Array | null;
}
interface PbKeyValue {
  key?: string | null;
  value?: PbAnyValue | null;
}
interface PbSpan {
  traceId?: Uint8Array | null;
  spanId?: Uint8Array | null;
  name?: string | null;
  startTimeUnixNano?: PbInt;
  endTimeUnixNano?: PbInt;
  attributes?: PbKeyValue[] | null;
  events?: Array<{ timeUnixNano?: PbInt; name?: string | null; attributes?: PbKeyValue[] | null }> | null;
  status?: { code?: number | null } | null;
}
interface PbRequest {
  resourceSpans?: Array<{ resource?: { attributes?: PbKeyValue[] | null } | null; scopeSpans?: Array<{ spans?: PbSpan[] | null }> | null }> | null;
}
interface PbMessageType<T> {
  decode(reader: Uint8Array): T;
  encode(message: unknown): { finish(): Uint8Array };
  fromObject(object: unknown): unknown;
}
interface TraceServiceTypes {
  ExportTraceServiceRequest: PbMessageType<PbRequest>;
  ExportTraceServiceResponse: PbMessageType<unknown>;
}

let types: TraceServiceTypes | undefined;

/** The generated message types, loaded on first use (serve only). */
function traceService(): TraceServiceTypes {
  if (!types) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const root = require('otlp-transformer-protobufjs/build/src/generated/root') as {
      opentelemetry: { proto: { collector: { trace: { v1: TraceServiceTypes } } } };
    };
    types = root.opentelemetry.proto.collector.trace.v1;
  }
  return types;
}

function pbBigInt(value: PbInt, unsigned: boolean): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === 'number') return BigInt(Math.trunc(value));
  if (typeof value === 'string') return BigInt(value);
  const low = BigInt(value.low >>> 0);
  const high = BigInt(value.high >>> 0);
  const raw = (high << 32n) | low;
  return unsigned || value.unsigned ? raw : BigInt.asIntN(64, raw);
}

function hexId(bytes: Uint8Array | null | undefined, length: number): string | null {
  if (!bytes || bytes.length !== length) return null;
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
  return /^0+$/.test(hex) ? null : hex;
}

function pbValue(value: PbAnyValue | null | undefined, depth: number): AttributeValue | undefined {
  if (!value) return undefined;
  if (value.stringValue !== null && value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== null && value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== null && value.intValue !== undefined) return intNumber(pbBigInt(value.intValue, false));
  if (value.doubleValue !== null && value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue && depth < MAX_VALUE_DEPTH) {
    return (value.arrayValue.values ?? []).map((item) => scalarOrNull(pbValue(item, depth + 1))) as AttributeValue;
  }
  // kvlist and bytes values have no OpenTelemetry JS attribute form; the ledger does not use them.
  return undefined;
}

function pbAttributes(list: PbKeyValue[] | null | undefined): Attributes {
  const out: Attributes = {};
  for (const kv of list ?? []) {
    if (typeof kv.key !== 'string') continue;
    const value = pbValue(kv.value, 0);
    if (value !== undefined) out[kv.key] = value;
  }
  return out;
}

/** Decodes an `application/x-protobuf` ExportTraceServiceRequest. */
export function decodeProtobufRequest(body: Uint8Array): DecodedSpan[] {
  let message: PbRequest;
  try {
    message = traceService().ExportTraceServiceRequest.decode(body);
  } catch (error) {
    throw new MalformedBody(`the body is not a protobuf ExportTraceServiceRequest: ${(error as Error).message}`);
  }
  const spans: DecodedSpan[] = [];
  for (const rs of message.resourceSpans ?? []) {
    const resource = pbAttributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        spans.push({
          traceId: hexId(span.traceId, 16),
          spanId: hexId(span.spanId, 8),
          name: span.name ?? '',
          startTimeUnixNano: pbBigInt(span.startTimeUnixNano, true),
          endTimeUnixNano: pbBigInt(span.endTimeUnixNano, true),
          attributes: pbAttributes(span.attributes),
          events: (span.events ?? []).map((e) => ({
            name: e.name ?? '',
            timeUnixNano: pbBigInt(e.timeUnixNano, true),
            attributes: pbAttributes(e.attributes),
          })),
          statusCode: span.status?.code ?? 0,
          resource,
        });
      }
    }
  }
  return spans;
}

// --- JSON ----------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** A member by its lowerCamelCase JSON name or its original proto field name. */
function member(object: JsonObject, camel: string, snake: string): Json | undefined {
  if (Object.prototype.hasOwnProperty.call(object, camel)) return object[camel];
  if (camel !== snake && Object.prototype.hasOwnProperty.call(object, snake)) return object[snake];
  return undefined;
}

function objectAt(value: Json | undefined, where: string): JsonObject | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new MalformedBody(`${where} must be a JSON object`);
  return value;
}

function arrayAt(value: Json | undefined, where: string): Json[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new MalformedBody(`${where} must be a JSON array`);
  return value;
}

function stringAt(value: Json | undefined, where: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new MalformedBody(`${where} must be a string`);
  return value;
}

/** int64 / fixed64 in the JSON mapping: a decimal string or a number. */
function int64At(value: Json | undefined, where: string, unsigned: boolean): bigint {
  if (value === undefined || value === null) return 0n;
  let n: bigint;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new MalformedBody(`${where} must be an integer`);
    n = BigInt(value);
  } else if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) {
    n = BigInt(value);
  } else {
    throw new MalformedBody(`${where} must be an integer or a decimal string`);
  }
  const min = unsigned ? 0n : -(1n << 63n);
  const max = unsigned ? (1n << 64n) - 1n : (1n << 63n) - 1n;
  if (n < min || n > max) throw new MalformedBody(`${where} is out of range`);
  return n;
}

function jsonHexId(value: Json | undefined, length: number): string | null {
  if (typeof value !== 'string') return null;
  if (value.length !== length * 2 || !/^[0-9a-fA-F]+$/.test(value)) return null;
  const hex = value.toLowerCase();
  return /^0+$/.test(hex) ? null : hex;
}

function jsonValue(value: Json | undefined, where: string, depth: number): AttributeValue | undefined {
  const v = objectAt(value, where);
  if (!v) return undefined;
  const s = member(v, 'stringValue', 'string_value');
  if (s !== undefined && s !== null) return stringAt(s, `${where}.stringValue`);
  const b = member(v, 'boolValue', 'bool_value');
  if (b !== undefined && b !== null) {
    if (typeof b !== 'boolean') throw new MalformedBody(`${where}.boolValue must be a boolean`);
    return b;
  }
  const i = member(v, 'intValue', 'int_value');
  if (i !== undefined && i !== null) return intNumber(int64At(i, `${where}.intValue`, false));
  const d = member(v, 'doubleValue', 'double_value');
  if (d !== undefined && d !== null) {
    if (typeof d === 'number') return d;
    // The protobuf JSON mapping writes non-finite doubles as strings.
    if (d === 'NaN') return NaN;
    if (d === 'Infinity') return Infinity;
    if (d === '-Infinity') return -Infinity;
    if (typeof d === 'string' && d.trim() !== '' && Number.isFinite(Number(d))) return Number(d);
    throw new MalformedBody(`${where}.doubleValue must be a number`);
  }
  const a = member(v, 'arrayValue', 'array_value');
  if (a !== undefined && a !== null) {
    const values = arrayAt(member(objectAt(a, `${where}.arrayValue`)!, 'values', 'values'), `${where}.arrayValue.values`);
    if (depth >= MAX_VALUE_DEPTH) return undefined;
    return values.map((item, k) => scalarOrNull(jsonValue(item, `${where}.arrayValue.values[${k}]`, depth + 1))) as AttributeValue;
  }
  // kvlistValue and bytesValue: no attribute form here (see pbValue).
  return undefined;
}

function jsonAttributes(value: Json | undefined, where: string): Attributes {
  const out: Attributes = {};
  arrayAt(value, where).forEach((item, k) => {
    const kv = objectAt(item, `${where}[${k}]`);
    if (!kv) return;
    const key = member(kv, 'key', 'key');
    if (typeof key !== 'string') throw new MalformedBody(`${where}[${k}].key must be a string`);
    const v = jsonValue(member(kv, 'value', 'value'), `${where}[${k}].value`, 0);
    if (v !== undefined) out[key] = v;
  });
  return out;
}

/** Decodes an `application/json` ExportTraceServiceRequest (OTLP JSON mapping). */
export function decodeJsonRequest(body: Buffer): DecodedSpan[] {
  let doc: Json;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) as Json;
  } catch (error) {
    throw new MalformedBody(`the body is not valid UTF-8 JSON: ${(error as Error).message}`);
  }
  const root = objectAt(doc, 'the request');
  if (!root) throw new MalformedBody('the request must be a JSON object');
  const spans: DecodedSpan[] = [];
  arrayAt(member(root, 'resourceSpans', 'resource_spans'), 'resourceSpans').forEach((rsValue, r) => {
    const rs = objectAt(rsValue, `resourceSpans[${r}]`);
    if (!rs) return;
    const resourceObject = objectAt(member(rs, 'resource', 'resource'), `resourceSpans[${r}].resource`);
    const resource = resourceObject ? jsonAttributes(member(resourceObject, 'attributes', 'attributes'), `resourceSpans[${r}].resource.attributes`) : {};
    arrayAt(member(rs, 'scopeSpans', 'scope_spans'), `resourceSpans[${r}].scopeSpans`).forEach((ssValue, s) => {
      const ss = objectAt(ssValue, `resourceSpans[${r}].scopeSpans[${s}]`);
      if (!ss) return;
      arrayAt(member(ss, 'spans', 'spans'), `resourceSpans[${r}].scopeSpans[${s}].spans`).forEach((spanValue, k) => {
        const where = `resourceSpans[${r}].scopeSpans[${s}].spans[${k}]`;
        const span = objectAt(spanValue, where);
        if (!span) return;
        const status = objectAt(member(span, 'status', 'status'), `${where}.status`);
        const code = status ? member(status, 'code', 'code') : undefined;
        if (code !== undefined && code !== null && !(typeof code === 'number' && Number.isInteger(code))) {
          throw new MalformedBody(`${where}.status.code must be an integer (OTLP JSON writes enums as integers)`);
        }
        spans.push({
          traceId: jsonHexId(member(span, 'traceId', 'trace_id'), 16),
          spanId: jsonHexId(member(span, 'spanId', 'span_id'), 8),
          name: stringAt(member(span, 'name', 'name'), `${where}.name`),
          startTimeUnixNano: int64At(member(span, 'startTimeUnixNano', 'start_time_unix_nano'), `${where}.startTimeUnixNano`, true),
          endTimeUnixNano: int64At(member(span, 'endTimeUnixNano', 'end_time_unix_nano'), `${where}.endTimeUnixNano`, true),
          attributes: jsonAttributes(member(span, 'attributes', 'attributes'), `${where}.attributes`),
          events: arrayAt(member(span, 'events', 'events'), `${where}.events`).flatMap((eValue, e) => {
            const event = objectAt(eValue, `${where}.events[${e}]`);
            if (!event) return [];
            return [
              {
                name: stringAt(member(event, 'name', 'name'), `${where}.events[${e}].name`),
                timeUnixNano: int64At(member(event, 'timeUnixNano', 'time_unix_nano'), `${where}.events[${e}].timeUnixNano`, true),
                attributes: jsonAttributes(member(event, 'attributes', 'attributes'), `${where}.events[${e}].attributes`),
              },
            ];
          }),
          statusCode: typeof code === 'number' ? code : 0,
          resource,
        });
      });
    });
  });
  return spans;
}

// --- Shared --------------------------------------------------------------------------------------

/** An int64 attribute as a JS number (exact up to 2^53; token counts and the like never get near). */
function intNumber(n: bigint): number {
  return Number(n);
}

function scalarOrNull(value: AttributeValue | undefined): string | number | boolean | null {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  return null;
}

// --- Responses -----------------------------------------------------------------------------------

export type Encoding = 'protobuf' | 'json';

export interface PartialSuccess {
  rejectedSpans: number;
  errorMessage: string;
}

/** ExportTraceServiceResponse; `partial` only when some spans were rejected (the spec leaves it unset otherwise). */
export function encodeExportResponse(encoding: Encoding, partial?: PartialSuccess): Buffer {
  if (encoding === 'json') {
    return Buffer.from(
      JSON.stringify(partial ? { partialSuccess: { rejectedSpans: String(partial.rejectedSpans), errorMessage: partial.errorMessage } } : {}),
    );
  }
  const Response = traceService().ExportTraceServiceResponse;
  const message = Response.fromObject(
    partial ? { partialSuccess: { rejectedSpans: partial.rejectedSpans, errorMessage: partial.errorMessage } } : {},
  );
  return Buffer.from(Response.encode(message).finish());
}

/** google.rpc.Status codes used in error bodies. */
export const RPC_CODE = {
  invalidArgument: 3,
  notFound: 5,
  resourceExhausted: 8,
  unimplemented: 12,
  unavailable: 14,
  unauthenticated: 16,
} as const;

/**
 * The body of a 4xx/5xx answer: google.rpc.Status `{code, message}` in the request's encoding, as
 * the OTLP/HTTP specification asks. Two scalar fields, written directly:
 * field 1 (code, varint) and field 2 (message, length-delimited UTF-8).
 */
export function encodeStatus(encoding: Encoding, code: number, message: string): Buffer {
  if (encoding === 'json') return Buffer.from(JSON.stringify({ code, message }));
  const text = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from([0x08]), varint(code), Buffer.from([0x12]), varint(text.length), text]);
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  let v = n >>> 0;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  return Buffer.from(bytes);
}
