/**
 * The request of an audited call, read once.
 *
 * The application's params object is read by the SDK (to serialize it, possibly after an await)
 * and by the audit (hashes, sanitizer, hooks, encrypted content, error scrubbing). A getter, a
 * Proxy or an object changed meanwhile can answer differently at each read, so the hash could cover
 * text that was never sent, and the sanitizer scan one text while another goes out. So the params
 * are copied once, at the start of the call, and the copy is what every reader sees, the SDK
 * included: what is hashed is what is sent.
 *
 * The copy is of the JSON-visible values (what the SDK serializes): plain objects and arrays are
 * copied through their own enumerable properties, each read once (a getter is called once and its
 * value kept); everything else is shared: strings (immutable), functions, class instances (Date,
 * Buffer, File, a Zod schema...), whose serialization the SDK does as before. Boxed primitives
 * (`new String('...')`) become the primitive: JSON writes them alike, and the sanitizer and hasher
 * then see the text. Non-enumerable and symbol-keyed properties are not serialized and are left out
 * (the SDK helpers that mark params that way, such as openai's `$brand`, read their own copy).
 * The application's object is never modified.
 *
 * Identity: the input hash resumes a conversation whose earlier message objects it has already
 * hashed (src/audit/conversation-memo.ts), which needs the same objects call after call. So each
 * copy is remembered (weakly) beside its original, and when the original still holds the same
 * values (`===`, member names in the same order) the earlier copy is returned instead of a new one:
 * an agent loop keeps its resumed hashing, and an unchanged request allocates only its top-level
 * object (the params object itself is not remembered: see copy()).
 */

import { RememberRule } from '../audit/conversation-memo';

const copies = new WeakMap<object, object>();

/** A cycle in the params: the copy gives up, the SDK meets the cycle as it would have. */
class CyclicRequest extends Error {}

// A request deeper than this is left to the SDK as is (the audit then reads the original).
const MAX_DEPTH = 256;

/** One call's copy: where it is in the params, whether its copies are remembered, whether an earlier one was found. */
interface Walk {
  path: object[];
  remember: boolean;
  found: boolean;
}

// A server that receives the whole conversation with each request copies new objects at every
// call: each remembered copy is then a WeakMap entry per object per call (one per message at
// least), which the garbage collector pays for and nothing ever finds again. So, as the
// conversation memo does for its states (by the same rule), after a streak of calls that found no
// earlier copy only one call in a few remembers its copies, until a call finds one: the
// application reuses its objects again.
const rule = new RememberRule();

/** The params, copied as described above; `params` itself when it is not an object. Throws on a cycle or a throwing getter. */
export function snapshotRequest<T>(params: T): T {
  const walk: Walk = { path: [], remember: rule.worthRemembering(), found: false };
  const out = copy(params, walk) as T;
  if (walk.found) rule.found();
  else rule.missed();
  return out;
}

function copy(value: unknown, walk: Walk): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof String || value instanceof Number || value instanceof Boolean) return value.valueOf();
  const isArray = Array.isArray(value);
  if (!isArray) {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return value;
  }
  const path = walk.path;
  if (path.includes(value) || path.length >= MAX_DEPTH) throw new CyclicRequest('the request contains a cycle or is too deep to copy');
  path.push(value);
  // The params object itself is a new literal at nearly every call: remembering each would add a
  // WeakMap entry per call to save the copy of a few members (a WeakMap.set per call was most of
  // what the audit-context attributes cost, bench/results/hot-path.md). What is worth finding
  // again is what it holds, the messages.
  const root = path.length === 1;
  const previous = root ? undefined : (copies.get(value) as Record<string, unknown> | undefined);
  if (previous !== undefined) walk.found = true;
  const out = isArray ? copyArray(value as unknown[], previous as unknown[] | undefined, walk) : copyObject(value as Record<string, unknown>, previous, walk);
  path.pop();
  if (!root && walk.remember && out !== previous) copies.set(value, out);
  return out;
}

function copyArray(value: unknown[], previous: unknown[] | undefined, walk: Walk): unknown[] {
  const length = value.length;
  let out: unknown[] | undefined = previous !== undefined && previous.length === length ? undefined : [];
  for (let i = 0; i < length; i++) {
    const item = copy(value[i], walk);
    if (out === undefined) {
      if (previous![i] === item) continue;
      // The first difference: the earlier copy is stale; start a new one with what matched so far.
      out = previous!.slice(0, i);
    }
    out.push(item);
  }
  return out ?? previous!;
}

function copyObject(value: Record<string, unknown>, previous: Record<string, unknown> | undefined, walk: Walk): Record<string, unknown> {
  const previousKeys = previous !== undefined ? Object.keys(previous) : undefined;
  let out: Record<string, unknown> | undefined = previous !== undefined ? undefined : Object.getPrototypeOf(value) === null ? Object.create(null) : {};
  let index = 0;
  for (const key of Object.keys(value)) {
    const item = copy(value[key], walk);
    if (out === undefined) {
      if (previousKeys![index] === key && previous![key] === item) {
        index++;
        continue;
      }
      out = Object.getPrototypeOf(value) === null ? Object.create(null) : {};
      for (let k = 0; k < index; k++) set(out!, previousKeys![k]!, previous![previousKeys![k]!]);
    }
    set(out!, key, item);
    index++;
  }
  if (out === undefined && index === previousKeys!.length) return previous!;
  if (out === undefined) {
    // A member was removed: a new copy of the members that are left.
    out = Object.getPrototypeOf(value) === null ? Object.create(null) : {};
    for (let k = 0; k < index; k++) set(out!, previousKeys![k]!, previous![previousKeys![k]!]);
  }
  return out!;
}

function set(target: Record<string, unknown>, key: string, item: unknown): void {
  // A literal "__proto__" member (JSON.parse makes them) is defined, never assigned: assigning
  // would set the copy's prototype instead.
  if (key === '__proto__') Object.defineProperty(target, key, { value: item, enumerable: true, writable: true, configurable: true });
  else target[key] = item;
}
