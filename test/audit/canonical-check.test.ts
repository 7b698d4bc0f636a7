/**
 * isCanonicalJson(text) must say exactly what `canonicalJson(JSON.parse(text)) === text` says (that
 * is what verify used to compute for every stored line): checked on hand-picked texts around every
 * rule, and on many random values and random one-character changes of their canonical text.
 */
import { describe, expect, it } from 'vitest';
import { canonicalJson, isCanonicalJson } from '../../src/audit/canonical-json';
import { prng } from '../support/prng';

function reference(text: string): boolean {
  try {
    return canonicalJson(JSON.parse(text)) === text;
  } catch {
    return false;
  }
}

const ODD_UNITS = [0, 8, 9, 10, 12, 13, 0x1f, 0x22, 0x2f, 0x5c, 0x7f, 0xe9, 0x2028, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xfeff, 0xffff];
const NUMBERS = [0, -0, 1, -1, 0.1, 1e21, 1e-7, 123456789012345680000, 5e-324, 1.7976931348623157e308, 2 ** 53, -1.5e-10, 100, 0.5];

function randomString(rand: () => number): string {
  let s = '';
  const n = Math.floor(rand() * 6);
  for (let i = 0; i < n; i++) {
    const r = rand();
    s += r < 0.5 ? String.fromCharCode(0x61 + Math.floor(rand() * 4)) : String.fromCharCode(ODD_UNITS[Math.floor(rand() * ODD_UNITS.length)]!);
  }
  return s;
}

function randomValue(rand: () => number, depth: number): unknown {
  const r = rand();
  if (depth > 3 || r < 0.3) {
    const k = rand();
    if (k < 0.3) return randomString(rand);
    if (k < 0.6) return NUMBERS[Math.floor(rand() * NUMBERS.length)];
    return [true, false, null][Math.floor(rand() * 3)];
  }
  if (r < 0.6) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 5); i > 0; i--) o[randomString(rand)] = randomValue(rand, depth + 1);
  return o;
}

const MUTATIONS = [' ', '"', '\\', ',', ':', '{', '}', '[', ']', '0', '1', '-', '+', 'e', 'E', '.', 'u', 'n', '\u0000', '\ud800', '\udc00', 'A', 'a'];

describe('isCanonicalJson', () => {
  it('agrees with canonicalJson(JSON.parse(text)) === text on hand-picked texts', () => {
    const texts = [
      '{}', '[]', '{"a":1}', '{"a":1,"b":2}', '{"b":2,"a":1}', '{"a":1,"a":1}', '{ "a":1}', '{"a": 1}', '[1,2]', '[1, 2]', '[1,]', '{"a":1,}',
      '1', '-0', '0', '01', '1.0', '1.5', '1e21', '1e+21', '1E+21', '1e-7', '1e-07', '0.0000001', '.5', '-', '+1', '1.', 'NaN', 'Infinity',
      'true', 'false', 'null', 'nul', 'truee', '"a"', '"\\u0041"', '"\\/"', '"/"', '"\\b\\f\\n\\r\\t\\"\\\\"', '"\\u0008"', '"\\u001f"', '"\\u001F"',
      '"\u001f"', '"\u007f"', '"\\u007f"', '"\ud800"', '"\\ud800"', '"\\uD800"', '"\ud800\udc00"', '"\\ud800\\udc00"', '"\\ud800\udc00"', '"\ud800\\udc00"',
      '"\\udc00"', '"\udc00"', '"\\udc00\\ud800"', '"\\ud800a"', '"\\ud800\\u0041"', '{"\\u00e9":1}', '{"é":1}', '{"\\n":1,"a":2}', '{"a":1,"\\n":2}',
      '{"\ud800\udc00":1,"\uffff":2}', '{"\uffff":1,"\ud800\udc00":2}', '{"__proto__":1}', '{"10":1,"9":2}', '{"9":1,"10":2}', '', ' ', '"', '"\\', '"\\u00', '{"a"}', '{"a":}', '[1 2]',
      '{"a":1,"ab":2}', '{"ab":1,"a":2}', '{"a\\n":1,"a":2}', '{"a":1,"a\\n":2}', '{"!":1,"\\"":2}', '{"\\"":1,"!":2}', '{"a\\"":1,"a\\\\":2}',
      '{"prev":"00","record":{"action":null,"cost_usd":0.001},"seq":0}',
    ];
    for (const text of texts) expect(isCanonicalJson(text), JSON.stringify(text)).toBe(reference(text));
  });

  it('agrees on random values and on random one-character changes of their canonical text', () => {
    const rand = prng(7);
    let canonical = 0;
    let changed = 0;
    for (let i = 0; i < 4000; i++) {
      const text = canonicalJson(randomValue(rand, 0));
      expect(isCanonicalJson(text), JSON.stringify(text)).toBe(true);
      canonical++;
      for (let k = 0; k < 6; k++) {
        const at = Math.floor(rand() * (text.length + 1));
        const m = MUTATIONS[Math.floor(rand() * MUTATIONS.length)]!;
        const op = rand();
        const mutated = op < 0.4 ? text.slice(0, at) + m + text.slice(at) : op < 0.8 ? text.slice(0, at) + m + text.slice(at + 1) : text.slice(0, at) + text.slice(at + 1);
        // Also the standard serialisation, which differs from the canonical one only in member order.
        const alt = JSON.stringify(JSON.parse(text));
        for (const t of [mutated, alt]) {
          expect(isCanonicalJson(t), JSON.stringify(t)).toBe(reference(t));
          changed++;
        }
      }
    }
    expect(canonical).toBe(4000);
    expect(changed).toBe(48000);
  });
});
