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

/**
 * True when `text` is exactly the canonical JSON of the value it parses to, i.e.
 * `canonicalJson(JSON.parse(text)) === text`, decided by one pass over the text without building a
 * second string (`verify` asks this of every stored line). Canonical means: no whitespace; object
 * members in strictly increasing UTF-16 order of their names (so no name twice); numbers as
 * ECMAScript writes them; strings escaped exactly as JSON.stringify escapes them (short escapes for
 * \b \t \n \f \r \" \\, lowercase \u00xx for other controls and for lone surrogates, nothing else).
 * Any text that is not JSON is not canonical.
 */
export function isCanonicalJson(text: string): boolean {
  const end = canonicalValueEnd(text, 0);
  return end === text.length;
}

/**
 * Index after the canonical value starting at `i` in `text`, or -1 if there is none. `onMember`
 * sees each member of the object at `i` (not of nested ones) as it is passed: its quoted name at
 * [nameStart, nameEnd) and its value at [nameEnd + 1, valueEnd); members before a fault are seen
 * too, so a caller uses what it saw only when the whole value is canonical.
 */
export function canonicalValueEnd(t: string, i: number, onMember?: (nameStart: number, nameEnd: number, valueEnd: number) => void): number {
  const c = t.charCodeAt(i);
  if (c === 0x22 /* " */) return canonicalStringEnd(t, i);
  if ((c >= 0x30 && c <= 0x39) || c === 0x2d /* - */) return canonicalNumberEnd(t, i);
  if (c === 0x7b /* { */) {
    i++;
    if (t.charCodeAt(i) === 0x7d) return i + 1;
    // The previous member name, as its range in `t` (names are compared in place, unescaped).
    let prevStart = -1;
    let prevEnd = -1;
    for (;;) {
      if (t.charCodeAt(i) !== 0x22) return -1;
      const nameEnd = canonicalStringEnd(t, i);
      if (nameEnd < 0 || t.charCodeAt(nameEnd) !== 0x3a /* : */) return -1;
      if (prevStart >= 0 && !namesIncrease(t, prevStart, prevEnd, i, nameEnd)) return -1;
      prevStart = i;
      prevEnd = nameEnd;
      i = canonicalValueEnd(t, nameEnd + 1);
      if (i < 0) return -1;
      if (onMember !== undefined) onMember(prevStart, nameEnd, i);
      const next = t.charCodeAt(i);
      if (next === 0x7d) return i + 1;
      if (next !== 0x2c /* , */) return -1;
      i++;
    }
  }
  if (c === 0x5b /* [ */) {
    i++;
    if (t.charCodeAt(i) === 0x5d) return i + 1;
    for (;;) {
      i = canonicalValueEnd(t, i);
      if (i < 0) return -1;
      const next = t.charCodeAt(i);
      if (next === 0x5d) return i + 1;
      if (next !== 0x2c) return -1;
      i++;
    }
  }
  if (t.startsWith('true', i)) return i + 4;
  if (t.startsWith('false', i)) return i + 5;
  if (t.startsWith('null', i)) return i + 4;
  return -1;
}

/**
 * Whether the name quoted at [bStart, bEnd) comes strictly after the one at [aStart, aEnd) in
 * UTF-16 order. Compared in place when neither has an escape (then the quoted text is the name).
 */
function namesIncrease(t: string, aStart: number, aEnd: number, bStart: number, bEnd: number): boolean {
  const aLen = aEnd - aStart - 2;
  const bLen = bEnd - bStart - 2;
  const n = Math.min(aLen, bLen);
  for (let k = 1; k <= n; k++) {
    const x = t.charCodeAt(aStart + k);
    const y = t.charCodeAt(bStart + k);
    if (x === 0x5c || y === 0x5c) return (JSON.parse(t.slice(aStart, aEnd)) as string) < (JSON.parse(t.slice(bStart, bEnd)) as string);
    if (x !== y) return x < y;
  }
  // The compared text has no escape and is equal: the shorter name is a prefix of the longer (an
  // escape in the longer one's rest still adds at least a character); equal text is the same name.
  return aLen < bLen;
}

/**
 * Index after the canonical number at `i`, or -1: its token must be what ECMAScript's
 * Number-to-string writes for its value (which also rules out every non-JSON form: leading zeros,
 * "+", "1.", ".5", "1E5", "-0"). Integers of up to 15 digits, most of a ledger's numbers, are
 * decided without converting.
 */
function canonicalNumberEnd(t: string, i: number): number {
  let j = i;
  let digitsOnly = true;
  for (;;) {
    const d = t.charCodeAt(j);
    if (d >= 0x30 && d <= 0x39) j++;
    else if (d === 0x2d || d === 0x2b || d === 0x2e || d === 0x65) {
      if (!(d === 0x2d && j === i)) digitsOnly = false;
      j++;
    } else break;
  }
  const first = t.charCodeAt(i) === 0x2d ? i + 1 : i;
  const digits = j - first;
  if (digitsOnly && digits >= 1 && digits <= 15) {
    // "0" alone, or no leading zero; "-0" is written "0".
    if (t.charCodeAt(first) === 0x30) return digits === 1 && first === i ? j : -1;
    return j;
  }
  const token = t.slice(i, j);
  return '' + Number(token) === token ? j : -1;
}

const SHORT_ESCAPES = new Set([0x22, 0x5c, 0x62, 0x66, 0x6e, 0x72, 0x74]); // " \ b f n r t
const isLead = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const isTrail = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;
const LOWER_HEX = /^[0-9a-f]{4}$/;

// A run of characters a canonical string holds literally and that need no further look (anything
// but the quote, backslash, controls and surrogates): matched natively, about twice as fast as the
// character loop below over a ledger line's strings (verify checks every stored line).
const PLAIN_RUN = /[^"\\\u0000-\u001f\ud800-\udfff]*/y;

/** Index after the canonical string starting at the quote at `i`, or -1. */
function canonicalStringEnd(t: string, i: number): number {
  PLAIN_RUN.lastIndex = i + 1;
  PLAIN_RUN.test(t);
  i = PLAIN_RUN.lastIndex;
  if (t.charCodeAt(i) === 0x22) return i + 1;
  const n = t.length;
  for (; i < n; i++) {
    const c = t.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c < 0x20) return -1; // a control character must be escaped
    if (isLead(c)) {
      // A pair is written as it is; a lone surrogate must be escaped.
      if (!isTrail(t.charCodeAt(i + 1))) return -1;
      i++;
      continue;
    }
    if (isTrail(c)) return -1;
    if (c !== 0x5c) continue;
    const e = t.charCodeAt(++i);
    if (SHORT_ESCAPES.has(e)) continue;
    if (e !== 0x75 /* u */) return -1;
    const hex = t.slice(i + 1, i + 5);
    if (!LOWER_HEX.test(hex)) return -1;
    const v = parseInt(hex, 16);
    i += 4;
    // \u is used for controls without a short form, and for lone surrogates only.
    if (v < 0x20) {
      if (v === 0x08 || v === 0x09 || v === 0x0a || v === 0x0c || v === 0x0d) return -1;
      continue;
    }
    if (isLead(v)) {
      // Escaped means lone: what follows must not be a trailing surrogate, literal or escaped.
      const next = t.charCodeAt(i + 1);
      if (isTrail(next)) return -1;
      if (next === 0x5c && t.charCodeAt(i + 2) === 0x75 && isTrail(parseInt(t.slice(i + 3, i + 7), 16))) return -1;
      continue;
    }
    if (isTrail(v)) continue; // a trailing one after a lead was refused at the lead
    return -1;
  }
  return -1;
}
