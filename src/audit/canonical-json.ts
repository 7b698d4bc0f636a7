/**
 * JSON Canonicalization Scheme (JCS), RFC 8785.
 *
 * Audit hashes must not depend on the order in which an SDK or a caller happened to build an
 * object, so everything that gets hashed is serialized through this one function first.
 *
 * The value model is the one JSON.stringify uses (toJSON, boxed primitives, members that are
 * undefined/functions/symbols dropped from objects and written as `null` in arrays), so that a value
 * hashes the same whether it is hashed directly or after a JSON round trip.
 *
 * One deliberate deviation: RFC 8785 section 3.2.2.2 asks an implementation to fail on lone
 * surrogates. Prompts and streamed output are user data, and a truncated or split chunk can carry
 * one; refusing to hash it would drop the audit record of a call that did happen. Lone surrogates are
 * therefore written as `\udXXX` escapes, exactly as (well-formed) JSON.stringify writes them, which
 * is still deterministic and unambiguous.
 */

// The objects being serialized from the root down to the current one, for cycle detection.
type Ancestors = object[];

// Exactly the characters JSON.stringify escapes (controls, quote, backslash) plus every surrogate,
// so that strings without them, the vast majority, skip the native call's copy: quoting them is a
// concatenation.
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

// Member names repeat across calls (role, content, type, tool_calls…), so their quoted form is
// kept. Bounded in count and name length, because names can also come from user data.
const quotedNames = new Map<string, string>();
const MAX_QUOTED_NAMES = 1024;
const MAX_CACHED_NAME_LENGTH = 64;

/**
 * Serializes `value` as RFC 8785 canonical JSON.
 *
 * @throws TypeError for non-finite numbers, BigInt values, cyclic structures, and a top-level value
 *   that has no JSON form (undefined, a function, a symbol).
 */
export function canonicalJson(value: unknown): string {
  const text = serializeValue(value, '', []);
  if (text === undefined) {
    throw new TypeError(`canonicalJson: a top-level ${typeof value} has no JSON representation`);
  }
  return text;
}

/**
 * The canonical text of `array[index]` as it appears inside the canonical text of `array`:
 * `canonicalJson(array)` is `[` + these texts joined by `,` + `]` (for an array without `toJSON`).
 * Lets a hash be fed one element at a time.
 *
 * @throws TypeError as canonicalJson does.
 */
export function canonicalElement(array: readonly unknown[], index: number): string {
  return serializeValue(array[index], index, [array]) ?? 'null';
}

/**
 * Returns the canonical text of `value`, or undefined when JSON.stringify would omit it.
 * `key` is what JSON.stringify passes to toJSON: the property name, or the array index.
 */
function serializeValue(value: unknown, key: string | number, ancestors: Ancestors): string | undefined {
  // Only objects and bigints can carry toJSON (JSON.stringify's SerializeJSONProperty, step 2).
  if ((typeof value === 'object' && value !== null) || typeof value === 'bigint') {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      value = toJSON.call(value, typeof key === 'number' ? String(key) : key);
    }
  }

  switch (typeof value) {
    case 'string':
      return quoteString(value);
    case 'number':
      return serializeNumber(value, key);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      return serializeObject(value, key, ancestors);
    case 'bigint':
      throw new TypeError(
        `canonicalJson: BigInt at ${describeKey(key)} is outside the I-JSON number model (RFC 8785 section 3.1)`,
      );
    default:
      // undefined, function, symbol.
      return undefined;
  }
}

function serializeNumber(value: number, key: string | number): string {
  // RFC 8785 section 3.2.2.3: numbers are IEEE-754 doubles written with ECMAScript's
  // Number.prototype.toString, which is what string conversion does; -0 comes out as "0" as the
  // RFC requires. NaN and the infinities have no JSON form and must be rejected, not nulled.
  if (value !== value || value === Infinity || value === -Infinity) {
    throw new TypeError(`canonicalJson: non-finite number ${String(value)} at ${describeKey(key)}`);
  }
  return '' + value;
}

function serializeObject(value: object, key: string | number, ancestors: Ancestors): string | undefined {
  // Boxed primitives serialize as their primitive (JSON.stringify's SerializeJSONProperty, step 4).
  if (value instanceof Number) return serializeNumber(Number(value), key);
  if (value instanceof String) return quoteString(String(value));
  if (value instanceof Boolean) return value.valueOf() ? 'true' : 'false';
  if (value instanceof BigInt) {
    throw new TypeError(
      `canonicalJson: BigInt at ${describeKey(key)} is outside the I-JSON number model (RFC 8785 section 3.1)`,
    );
  }

  // Ancestors are almost always few (chat payloads nest a handful of levels), so a linear scan of a
  // stack beats a Set's hashing and allocation.
  if (ancestors.includes(value)) {
    throw new TypeError(`canonicalJson: cyclic structure at ${describeKey(key)}`);
  }
  ancestors.push(value);

  let out: string;
  if (Array.isArray(value)) {
    out = '[';
    const length = value.length;
    for (let i = 0; i < length; i++) {
      if (i > 0) out += ',';
      out += serializeValue(value[i], i, ancestors) ?? 'null';
    }
    out += ']';
  } else {
    // RFC 8785 section 3.2.3: members are sorted by their names as arrays of UTF-16 code units.
    // Array.prototype.sort without a comparator compares strings exactly that way (not by code
    // point, not by locale), so the default sort is the specified order.
    const names = Object.keys(value);
    names.sort();
    out = '{';
    let first = true;
    const record = value as Record<string, unknown>;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      const member = serializeValue(record[name], name, ancestors);
      if (member === undefined) continue;
      if (first) first = false;
      else out += ',';
      out += quoteName(name) + ':' + member;
    }
    out += '}';
  }

  ancestors.pop();
  return out;
}

/**
 * RFC 8785 section 3.2.2.2: strings are escaped as ECMAScript's JSON.stringify escapes them (\b \t
 * \n \f \r \" \\ as two-character escapes, other controls as lowercase \u00xx, everything else
 * literal), so the native implementation does it whenever anything needs escaping.
 */
function quoteString(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : '"' + value + '"';
}

function quoteName(name: string): string {
  let quoted = quotedNames.get(name);
  if (quoted === undefined) {
    quoted = quoteString(name);
    if (quotedNames.size < MAX_QUOTED_NAMES && name.length <= MAX_CACHED_NAME_LENGTH) quotedNames.set(name, quoted);
  }
  return quoted;
}

function describeKey(key: string | number): string {
  if (key === '') return 'the top level';
  return typeof key === 'number' ? `index ${key}` : `key ${JSON.stringify(key)}`;
}
