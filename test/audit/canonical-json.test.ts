import { describe, it, expect } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';

/** The IEEE-754 double with the given big-endian bit pattern. */
function double(bits: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${bits}`));
  return view.getFloat64(0);
}

describe('canonicalJson: RFC 8785 examples', () => {
  // Appendix B: IEEE-754 bit pattern -> canonical text.
  const appendixB: ReadonlyArray<readonly [string, string]> = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'], // minus zero
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ];

  it.each(appendixB)('Appendix B: 0x%s serializes as %s', (bits, expected) => {
    expect(canonicalJson(double(bits))).toBe(expected);
    expect(canonicalJson({ n: double(bits) })).toBe(`{"n":${expected}}`);
  });

  it.each([
    ['7fffffffffffffff', 'NaN'],
    ['7ff0000000000000', 'Infinity'],
  ])('Appendix B: 0x%s (%s) is an error', (bits) => {
    expect(() => canonicalJson(double(bits))).toThrow(TypeError);
  });

  it('section 3.2.3: sorts members by UTF-16 code units (the emoji sorts before U+FB33)', () => {
    const input = JSON.parse(
      '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh", ' +
        '"1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control", ' +
        '"\\u00f6": "Latin Small Letter O With Diaeresis"}',
    ) as unknown;
    const expected =
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
      '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}';
    expect(canonicalJson(input)).toBe(expected);
  });

  it('section 3.2.2: the combined sample (numbers, escapes, literals)', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], ' +
        '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    ) as unknown;
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });
});

describe('canonicalJson: key order and structure', () => {
  it('gives the same text whatever order the members were inserted in, at every depth', () => {
    const a = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi', name: 'x' }], opts: { b: 2, a: 1 } };
    const b = { opts: { a: 1, b: 2 }, messages: [{ name: 'x', content: 'hi', role: 'user' }], model: 'gpt-4o' };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).toBe(
      '{"messages":[{"content":"hi","name":"x","role":"user"}],"model":"gpt-4o","opts":{"a":1,"b":2}}',
    );
  });

  it('keeps array order (arrays are ordered data)', () => {
    expect(canonicalJson([3, 1, 2])).toBe('[3,1,2]');
    expect(canonicalJson([3, 1, 2])).not.toBe(canonicalJson([1, 2, 3]));
  });

  it('sorts by code units, not numerically or by locale', () => {
    expect(canonicalJson({ '10': 0, '9': 0, '1': 0, b: 0, B: 0, a: 0, é: 0, e: 0 })).toBe(
      '{"1":0,"10":0,"9":0,"B":0,"a":0,"b":0,"e":0,"é":0}',
    );
  });

  it('equals JSON.stringify for input whose members are already sorted, escapes included', () => {
    const value = {
      a: 'plain',
      b: 'quote " backslash \\ slash /',
      c: '\u0000\u0001\b\t\n\f\r\u001f\u007f',
      d: 'emoji \ud83d\ude00 and lone \ud800 and \udfff surrogates',
      e: '\u2028\u2029',
      f: [1.5, -0, 1e21, 1e-7, 0.1 + 0.2, Number.MAX_SAFE_INTEGER],
      g: { 'na"me': 1, 'ne\nline': 2 },
      h: [null, true, false, {}, []],
    };
    expect(canonicalJson(value)).toBe(JSON.stringify(value));
  });

  it('escapes member names like strings, also when a name is seen again', () => {
    const value = { 'a"b': 1, 'c\\d': 2, 'e\u0001': 3 };
    const expected = '{"a\\"b":1,"c\\\\d":2,"e\\u0001":3}';
    expect(canonicalJson(value)).toBe(expected);
    expect(canonicalJson(value)).toBe(expected);
  });

  it('writes minus zero as 0', () => {
    expect(canonicalJson(-0)).toBe('0');
    expect(canonicalJson([-0, 0])).toBe('[0,0]');
  });

  it('allows the same object twice when it is not its own ancestor', () => {
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: [shared, shared] })).toBe('{"a":{"x":1},"b":[{"x":1},{"x":1}]}');
  });
});

describe('canonicalJson: JSON.stringify value model', () => {
  it('omits undefined, function and symbol members of objects', () => {
    const value = { a: undefined, b: () => 1, c: Symbol('s'), d: 1 };
    expect(canonicalJson(value)).toBe('{"d":1}');
    expect(canonicalJson(value)).toBe(JSON.stringify(value));
  });

  it('writes undefined, function and symbol array elements, and holes, as null', () => {
    // eslint-disable-next-line no-sparse-arrays
    const value = [undefined, () => 1, Symbol('s'), , 1];
    expect(canonicalJson(value)).toBe('[null,null,null,null,1]');
    expect(canonicalJson(value)).toBe(JSON.stringify(value));
  });

  it('ignores symbol-keyed and non-enumerable members', () => {
    const value: Record<string | symbol, unknown> = { a: 1, [Symbol('k')]: 2 };
    Object.defineProperty(value, 'hidden', { value: 3, enumerable: false });
    expect(canonicalJson(value)).toBe('{"a":1}');
  });

  it('calls toJSON with the member name or array index, as JSON.stringify does', () => {
    const seen: unknown[] = [];
    const probe = {
      toJSON(key: unknown) {
        seen.push(key);
        return { k: key };
      },
    };
    expect(canonicalJson({ z: probe, list: [probe] })).toBe('{"list":[{"k":"0"}],"z":{"k":"z"}}');
    // Members are visited in canonical order: "list" (and its element) before "z".
    expect(seen).toEqual(['0', 'z']);
    expect(canonicalJson(probe)).toBe('{"k":""}');
  });

  it('serializes Dates through toJSON', () => {
    const at = new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 6));
    expect(canonicalJson({ at })).toBe('{"at":"2025-01-02T03:04:05.006Z"}');
  });

  it('sorts the members of what toJSON returns', () => {
    expect(canonicalJson({ toJSON: () => ({ b: 1, a: 2 }) })).toBe('{"a":2,"b":1}');
  });

  it('unwraps boxed primitives', () => {
    // eslint-disable-next-line no-new-wrappers
    const value = [new Number(1.5), new String('s"'), new Boolean(false)];
    expect(canonicalJson(value)).toBe('[1.5,"s\\"",false]');
    expect(canonicalJson(value)).toBe(JSON.stringify(value));
  });

  it('has no text for a top-level undefined, function or symbol, and says so', () => {
    expect(() => canonicalJson(undefined)).toThrow(/top-level undefined/);
    expect(() => canonicalJson(() => 1)).toThrow(TypeError);
    expect(() => canonicalJson(Symbol('s'))).toThrow(TypeError);
  });
});

describe('canonicalJson: errors', () => {
  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
  ])('rejects %s with a TypeError naming where it is', (label, n) => {
    expect(() => canonicalJson({ usage: { tokens: n } })).toThrow(TypeError);
    expect(() => canonicalJson({ usage: { tokens: n } })).toThrow(`non-finite number ${label} at key "tokens"`);
    expect(() => canonicalJson([1, n])).toThrow('at index 1');
  });

  it('rejects BigInt, bare or boxed, at any depth', () => {
    expect(() => canonicalJson(1n)).toThrow(TypeError);
    expect(() => canonicalJson({ a: [1n] })).toThrow(/BigInt at index 0/);
    expect(() => canonicalJson({ a: Object(1n) as object })).toThrow(/BigInt at key "a"/);
  });

  it('detects a direct cycle', () => {
    const value: Record<string, unknown> = { a: 1 };
    value.self = value;
    expect(() => canonicalJson(value)).toThrow(TypeError);
    expect(() => canonicalJson(value)).toThrow(/cyclic structure at key "self"/);
  });

  it('detects a cycle through arrays and nested objects', () => {
    const messages: unknown[] = [];
    const root = { messages };
    messages.push({ role: 'user', parent: root });
    expect(() => canonicalJson(root)).toThrow(/cyclic/);
  });

  it('still works after an error (no state leaks between calls)', () => {
    const value: Record<string, unknown> = {};
    value.self = value;
    expect(() => canonicalJson(value)).toThrow();
    expect(canonicalJson({ b: 1, a: [2] })).toBe('{"a":[2],"b":1}');
  });
});
